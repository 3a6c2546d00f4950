import LichenStreams
import Testing

@Suite("Corruption names")
struct CorruptionNamesTests {
    @Test func fifteenInTheStandardOrder() {
        #expect(Corruption.continualOrder.map(\.rawValue) == [
            "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
            "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
        ])
    }
}
