import CRuntime

/// The geometry of a 2-D convolution over one NCHW image, for `im2col` / `col2im`.
///
/// Output size: `outputHeight = (height + 2*padH - dilationH*(kernelH-1) - 1) / strideH + 1`
/// (likewise the width). Conv1d is height 1, kernel height 1, stride 1, no padding, dilation 1.
public struct ConvGeometry: Equatable, Sendable {
    public var channels: Int, height: Int, width: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var strideHeight: Int, strideWidth: Int
    public var padHeight: Int, padWidth: Int
    public var dilationHeight: Int, dilationWidth: Int

    /// A geometry; every value is checked.
    ///
    /// - Throws: `.invalidArgument` naming the first value out of range (sizes, kernel, stride
    ///   and dilation >= 1, padding >= 0) or an empty output.
    /// - Note: Allocates nothing.
    public init(
        channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int,
        strideHeight: Int = 1, strideWidth: Int = 1, padHeight: Int = 0, padWidth: Int = 0,
        dilationHeight: Int = 1, dilationWidth: Int = 1
    ) throws(LichenError) {
        guard channels >= 1 else { throw .invalidArgument(name: "channels", value: channels, reason: "must be >= 1") }
        guard height >= 1 else { throw .invalidArgument(name: "height", value: height, reason: "must be >= 1") }
        guard width >= 1 else { throw .invalidArgument(name: "width", value: width, reason: "must be >= 1") }
        guard kernelHeight >= 1 else { throw .invalidArgument(name: "kernelHeight", value: kernelHeight, reason: "must be >= 1") }
        guard kernelWidth >= 1 else { throw .invalidArgument(name: "kernelWidth", value: kernelWidth, reason: "must be >= 1") }
        guard strideHeight >= 1 else { throw .invalidArgument(name: "strideHeight", value: strideHeight, reason: "must be >= 1") }
        guard strideWidth >= 1 else { throw .invalidArgument(name: "strideWidth", value: strideWidth, reason: "must be >= 1") }
        guard padHeight >= 0 else { throw .invalidArgument(name: "padHeight", value: padHeight, reason: "must be >= 0") }
        guard padWidth >= 0 else { throw .invalidArgument(name: "padWidth", value: padWidth, reason: "must be >= 0") }
        guard dilationHeight >= 1 else { throw .invalidArgument(name: "dilationHeight", value: dilationHeight, reason: "must be >= 1") }
        guard dilationWidth >= 1 else { throw .invalidArgument(name: "dilationWidth", value: dilationWidth, reason: "must be >= 1") }
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.padHeight = padHeight
        self.padWidth = padWidth
        self.dilationHeight = dilationHeight
        self.dilationWidth = dilationWidth
        let span = height + 2 * padHeight - dilationHeight * (kernelHeight - 1)
        guard span >= 1 else { throw .invalidArgument(name: "kernelHeight", value: kernelHeight, reason: "kernel larger than the padded input") }
        let spanW = width + 2 * padWidth - dilationWidth * (kernelWidth - 1)
        guard spanW >= 1 else { throw .invalidArgument(name: "kernelWidth", value: kernelWidth, reason: "kernel larger than the padded input") }
    }

    public var outputHeight: Int { (height + 2 * padHeight - dilationHeight * (kernelHeight - 1) - 1) / strideHeight + 1 }
    public var outputWidth: Int { (width + 2 * padWidth - dilationWidth * (kernelWidth - 1) - 1) / strideWidth + 1 }
    /// Rows of the column matrix: channels * kernelHeight * kernelWidth.
    public var columnRows: Int { channels * kernelHeight * kernelWidth }
    /// Columns of the column matrix: outputHeight * outputWidth.
    public var columnColumns: Int { outputHeight * outputWidth }

    var c: lcr_conv_geometry {
        lcr_conv_geometry(
            channels: Int64(channels), height: Int64(height), width: Int64(width),
            kernel_h: Int64(kernelHeight), kernel_w: Int64(kernelWidth),
            stride_h: Int64(strideHeight), stride_w: Int64(strideWidth),
            pad_h: Int64(padHeight), pad_w: Int64(padWidth),
            dilation_h: Int64(dilationHeight), dilation_w: Int64(dilationWidth))
    }
}
