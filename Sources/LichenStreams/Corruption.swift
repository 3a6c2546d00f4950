/// The 15 corruptions of the standard continual order (CIFAR-10-C / MNIST-C style), adapted to
/// 28x28 grayscale. Raw values are the names used in stream files and on the command line.
public enum Corruption: String, CaseIterable, Sendable {
    case gaussianNoise = "gaussian_noise"
    case shotNoise = "shot_noise"
    case impulseNoise = "impulse_noise"
    case defocusBlur = "defocus_blur"
    case glassBlur = "glass_blur"
    case motionBlur = "motion_blur"
    case zoomBlur = "zoom_blur"
    case snow
    case frost
    case fog
    case brightness
    case contrast
    case elasticTransform = "elastic_transform"
    case pixelate
    case jpegCompression = "jpeg_compression"

    /// The standard continual order (the order above).
    public static let continualOrder: [Corruption] = Corruption.allCases
}
