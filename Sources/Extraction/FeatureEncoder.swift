import Autoencoders
import Foundation
import NeuralNet
import TensorCore

/// One window-sliding layer of a feature-map network, per axis (pointwise layers have none).
///
/// ```
/// out = ⌊(in + 2·padding − kernel) / stride⌋ + 1
/// output voxel j sees input voxels  j·stride − padding ..< j·stride − padding + kernel
/// ```
struct WindowGeometry: Sendable, Equatable {
    var kernel: Triple
    var stride: Triple
    var padding: Triple

    static func along(_ t: Triple, _ axis: Int) -> Int { axis == 0 ? t.d : axis == 1 ? t.h : t.w }

    func outputExtent(_ n: Int, axis: Int) -> Int {
        let (k, s, p) = (Self.along(kernel, axis), Self.along(stride, axis), Self.along(padding, axis))
        return n + 2 * p < k ? 0 : (n + 2 * p - k) / s + 1
    }
}

/// A trained encoder made fully convolutional: it maps a whole normalised volume
/// `[1, 1, X, Y, Z]` to a feature map `[1, C, X', Y', Z']`, computed in slabs along `X`
/// when the activations would outgrow the memory budget, and optionally a per-region network
/// applied after pooling.
///
/// - CAE: the encoder half as trained (convolutions, activations, max pooling).
/// - SAE (Payan & Montana 2015): the first level's weights `W₁ [h₁, d·h·w]` become `h₁`
///   filters `[1, d, h, w]` of a valid (unpadded) 3-D convolution, so map voxel `j` holds the
///   code of the patch whose corner is voxel `j`; deeper levels act either at every map voxel
///   (as 1×1×1 convolutions: `.grid`) or on each region's pooled codes (`.pooled`).
///
/// Layer objects keep per-call state, so every thread builds its own with `makeNetworks()`.
public struct FeatureEncoder: Sendable {
    /// Channels of the feature map.
    public let mapChannels: Int
    /// Channels per region after the per-region network (`mapChannels` without one).
    public let featureChannels: Int
    /// A short description for reports, e.g. "Conv3d(1→8, k3)–ReLU–MaxPool3d(2)–…".
    public let summary: String
    let windows: [WindowGeometry]
    /// Every map layer's window (nil for pointwise layers) and output channels, for the
    /// memory estimate.
    let layers: [(window: WindowGeometry?, channels: Int)]
    private let makeMap: @Sendable () throws -> Sequential
    private let makePerRegion: (@Sendable () throws -> Sequential)?

    /// The feature-map network (and per-region network) of a trained run.
    public init(run: PretrainedRun, options: ExtractionOptions) throws {
        try self.init(config: run.config, model: run.model, options: options)
    }

    /// The feature-map network of `model`, built as `config` describes.
    public init(config: PretrainConfig, model: any AutoencoderModel, options: ExtractionOptions) throws {
        try options.validate()
        let state = Dictionary(Checkpoint.stateEntries(of: model.module), uniquingKeysWith: { first, _ in first })
        func tensor(_ name: String) throws -> Tensor {
            guard case let .float32(t) = state[name] else { throw ExtractionError.unsupportedModel("the model has no tensor '\(name)'") }
            return t
        }
        switch config.model {
        case .cae:
            guard options.saeLevels == nil, options.saeDeepLayers == ExtractionOptions().saeDeepLayers else {
                throw ExtractionError.invalidOption("sae levels and sae deep layers apply to stacked autoencoders; this model is a convolutional autoencoder")
            }
            guard let cae = model as? ConvolutionalAutoencoder else { throw ExtractionError.unsupportedModel("not a convolutional autoencoder") }
            let plan = try cae.encoder.layers.enumerated().map { index, layer in try LayerPlan(layer, name: "encoder.\(index)", tensor: tensor) }
            (mapChannels, featureChannels) = (plan.compactMap(\.outChannels).last ?? 1, plan.compactMap(\.outChannels).last ?? 1)
            layers = LayerPlan.shapes(plan)
            windows = layers.compactMap(\.window)
            summary = plan.map(\.summary).joined(separator: "–")
            makeMap = { Sequential(try plan.map { try $0.make() }) }
            makePerRegion = nil
        case .sae:
            guard let sae = config.sae else { throw ExtractionError.unsupportedModel("the configuration has no SAE options") }
            let levels = options.saeLevels ?? sae.hidden.count
            guard levels <= sae.hidden.count else {
                throw ExtractionError.invalidOption("sae levels \(levels): the model has \(sae.hidden.count) encoder level\(sae.hidden.count == 1 ? "" : "s")")
            }
            let patch = config.patches.extent
            let first = try tensor("encoder.0.weight")
            let filters = LayerPlan.convolution(weight: try first.reshaped([sae.hidden[0], 1] + patch.array), bias: try tensor("encoder.0.bias"),
                                                stride: Triple(1), padding: Triple(0))
            let activation = LayerPlan.activation(sae.activation)
            var deeper: [LayerPlan] = []
            for level in 1..<levels {
                let weight = try tensor("encoder.\(2 * level).weight")
                let bias = try tensor("encoder.\(2 * level).bias")
                switch options.saeDeepLayers {
                case .grid:
                    deeper.append(LayerPlan.convolution(weight: try weight.reshaped(weight.shape + [1, 1, 1]), bias: bias,
                                                        stride: Triple(1), padding: Triple(0)))
                case .pooled:
                    deeper.append(.dense(weight: weight, bias: bias))
                }
                deeper.append(LayerPlan.activation(sae.activation))
            }
            let mapPlan = [filters, activation] + (options.saeDeepLayers == .grid ? deeper : [])
            let regionPlan = options.saeDeepLayers == .pooled ? deeper : []
            mapChannels = mapPlan.compactMap(\.outChannels).last ?? 1
            featureChannels = (mapPlan + regionPlan).compactMap(\.outChannels).last ?? 1
            layers = LayerPlan.shapes(mapPlan)
            windows = layers.compactMap(\.window)
            summary = (mapPlan.map(\.summary) + (regionPlan.isEmpty ? [] : ["pool"] + regionPlan.map(\.summary))).joined(separator: "–")
            makeMap = { Sequential(try mapPlan.map { try $0.make() }) }
            if regionPlan.isEmpty {
                makePerRegion = nil
            } else {
                makePerRegion = { Sequential(try regionPlan.map { try $0.make() }) }
            }
        }
    }

    /// Fresh layers for one thread: the map network and the per-region network (if any).
    public func makeNetworks() throws -> (map: Sequential, perRegion: Sequential?) {
        (try makeMap(), try makePerRegion?())
    }

    /// The feature map's extent for an input volume of `shape` (an axis 0 when too small).
    public func mapShape(for shape: Triple) -> Triple {
        func extent(_ n: Int, _ axis: Int) -> Int { windows.reduce(n) { $1.outputExtent($0, axis: axis) } }
        return Triple(extent(shape.d, 0), extent(shape.h, 1), extent(shape.w, 2))
    }

    /// Where map voxel `j` is centred in input voxel coordinates, per axis: `scale·j + offset`.
    public func mapToInput(axis: Int) -> (scale: Double, offset: Double) {
        var (scale, offset) = (1.0, 0.0)
        // x_{l-1} = s·x_l − p + (k − 1)/2, composed from the first layer inwards.
        for window in windows {
            let k = Double(WindowGeometry.along(window.kernel, axis)), s = Double(WindowGeometry.along(window.stride, axis))
            let p = Double(WindowGeometry.along(window.padding, axis))
            offset += scale * (-p + (k - 1) / 2)
            scale *= s
        }
        return (scale, offset)
    }

    /// The input voxels along `axis` that map voxels `range` (non-empty) depend on: the union
    /// of their receptive fields, clipped to a volume of `n` voxels along that axis.
    ///
    /// ```
    /// per layer, output voxels a ..< b see input voxels  a·stride − padding ..< (b − 1)·stride − padding + kernel
    /// ```
    /// composed from the last layer back to the input, clipping to each layer's extent.
    public func inputVoxels(ofMapVoxels range: Range<Int>, axis: Int, inputExtent n: Int) -> Range<Int> {
        var extents = [n]
        for window in windows { extents.append(window.outputExtent(extents[extents.count - 1], axis: axis)) }
        var (low, high) = (range.lowerBound, range.upperBound)
        for (index, window) in windows.enumerated().reversed() {
            let k = WindowGeometry.along(window.kernel, axis), s = WindowGeometry.along(window.stride, axis)
            let p = WindowGeometry.along(window.padding, axis)
            (low, high) = (max(0, low * s - p), min(extents[index], (high - 1) * s - p + k))
        }
        return low..<max(low, high)
    }

    /// The input rows (along `X`) that map rows `rows` depend on, widened so that the slab
    /// starts on a multiple of every stride (its windows then line up with the whole volume's).
    func inputRows(forMapRows rows: Range<Int>, inputExtent n: Int) -> Range<Int> {
        let needed = inputVoxels(ofMapVoxels: rows, axis: 0, inputExtent: n)
        let alignment = windows.reduce(1) { $0 * $1.stride.d }
        return (needed.lowerBound / alignment * alignment)..<needed.upperBound
    }

    /// The first map row computed from a slab starting at input row `start` (a multiple of
    /// the strides' product).
    func firstMapRow(ofSlabStartingAt start: Int) -> Int {
        start / windows.reduce(1) { $0 * $1.stride.d }
    }

    /// Estimated bytes of activations for a slab of `rows` map rows of a volume of
    /// `inputShape` (an interior slab, with halos on both sides and its alignment).
    public func slabBytes(rows: Int, inputShape: Triple) -> Int {
        let map = mapShape(for: inputShape)
        let interior = max(0, min(map.d - rows, map.d / 2))
        let input = max(inputRows(forMapRows: 0..<rows, inputExtent: inputShape.d).count,
                        inputRows(forMapRows: interior..<(interior + rows), inputExtent: inputShape.d).count)
        // Each layer's input and output live at once; a convolution also pads a copy of its input.
        var (shape, channels, peak) = (Triple(input, inputShape.h, inputShape.w), 1, 0)
        for layer in layers {
            let next = layer.window.map { w in Triple(w.outputExtent(shape.d, axis: 0), w.outputExtent(shape.h, axis: 1), w.outputExtent(shape.w, axis: 2)) } ?? shape
            let copies = layer.window != nil ? 2 : 1
            peak = max(peak, 4 * (copies * channels * shape.product + layer.channels * next.product))
            (shape, channels) = (next, layer.channels)
        }
        return peak
    }

    /// Map rows per slab so that one slab's activations fit `bytes` (at least 1, whatever
    /// that needs: see `slabBytes(rows: 1, …)`).
    func mapRowsPerSlab(inputShape: Triple, bytes: Int) -> Int {
        let map = mapShape(for: inputShape)
        guard slabBytes(rows: map.d, inputShape: inputShape) > bytes else { return max(1, map.d) }
        var (low, high) = (1, map.d)
        while low < high {
            let middle = (low + high + 1) / 2
            if slabBytes(rows: middle, inputShape: inputShape) <= bytes { low = middle } else { high = middle - 1 }
        }
        return low
    }
}

/// One layer of a network to build per thread, with its weights held as values.
enum LayerPlan: Sendable {
    case convolution(weight: Tensor, bias: Tensor, stride: Triple, padding: Triple)
    case maxPool(kernel: Triple, stride: Triple)
    case dense(weight: Tensor, bias: Tensor)
    case activation(ActivationName)

    /// The plan of a trained encoder's layer (`name` is its state prefix).
    init(_ layer: any Layer, name: String, tensor: (String) throws -> Tensor) throws {
        switch layer {
        case let conv as Conv3d:
            self = .convolution(weight: try tensor("\(name).weight"), bias: try tensor("\(name).bias"), stride: conv.stride, padding: conv.padding)
        case let pool as MaxPool3d: self = .maxPool(kernel: pool.kernel, stride: pool.stride)
        case is ReLU: self = .activation(.relu)
        case is Sigmoid: self = .activation(.sigmoid)
        case is Tanh: self = .activation(.tanh)
        default: throw ExtractionError.unsupportedModel("\(name): a \(type(of: layer)) layer cannot be applied to whole volumes")
        }
    }

    var window: WindowGeometry? {
        switch self {
        case let .convolution(weight, _, stride, padding):
            return WindowGeometry(kernel: Triple(weight.shape[2], weight.shape[3], weight.shape[4]), stride: stride, padding: padding)
        case let .maxPool(kernel, stride): return WindowGeometry(kernel: kernel, stride: stride, padding: Triple(0))
        case .dense, .activation: return nil
        }
    }

    /// Each layer's window (nil when pointwise) and output channels.
    static func shapes(_ plan: [LayerPlan]) -> [(window: WindowGeometry?, channels: Int)] {
        var current = 1
        return plan.map { layer in
            current = layer.outChannels ?? current
            return (layer.window, current)
        }
    }

    var outChannels: Int? {
        switch self {
        case let .convolution(weight, _, _, _), let .dense(weight, _): return weight.shape[0]
        case .maxPool, .activation: return nil
        }
    }

    var summary: String {
        func text(_ t: Triple) -> String { t.d == t.h && t.h == t.w ? "\(t.d)" : "\(t.d)x\(t.h)x\(t.w)" }
        switch self {
        case let .convolution(weight, _, stride, _):
            let kernel = Triple(weight.shape[2], weight.shape[3], weight.shape[4])
            return "Conv3d(\(weight.shape[1])→\(weight.shape[0]), k\(text(kernel))\(stride == Triple(1) ? "" : ", s\(text(stride))"))"
        case let .maxPool(kernel, _): return "MaxPool3d(\(text(kernel)))"
        case let .dense(weight, _): return "Linear(\(weight.shape[1])→\(weight.shape[0]))"
        case let .activation(name): return name.rawValue
        }
    }

    func make() throws -> any Layer {
        var unused = Xoshiro256StarStar(seed: 0)
        switch self {
        case let .convolution(weight, bias, stride, padding):
            let layer = Conv3d(inChannels: weight.shape[1], outChannels: weight.shape[0], kernel: Triple(weight.shape[2], weight.shape[3], weight.shape[4]),
                               stride: stride, padding: padding, initialization: .he, using: &unused)
            (layer.weight.value, layer.bias.value) = (weight, bias)
            return layer
        case let .maxPool(kernel, stride): return MaxPool3d(kernel: kernel, stride: stride)
        case let .dense(weight, bias):
            let layer = Dense(inFeatures: weight.shape[1], outFeatures: weight.shape[0], initialization: .he, using: &unused)
            (layer.weight.value, layer.bias.value) = (weight, bias)
            return layer
        case let .activation(name):
            guard let layer = name.layer() else { throw ExtractionError.unsupportedModel("no layer for activation \(name.rawValue)") }
            return layer
        }
    }
}
