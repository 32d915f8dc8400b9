import Classifiers
import Foundation
import TensorCore

/// One scikit-learn reference case written by Tests/Fixtures/make_svm_fixtures.py (see its
/// docstring for what each field holds).
struct SVMFixture: Decodable {
    /// `gamma` as given to SVC: "scale", "auto" or a number.
    enum GammaSetting: Decodable {
        case named(String)
        case number(Double)

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let name = try? container.decode(String.self) { self = .named(name) } else { self = .number(try container.decode(Double.self)) }
        }
    }

    /// `class_weight` as given to SVC: null, "balanced" or {label: weight}.
    enum WeightSetting: Decodable {
        case none
        case balanced
        case custom([String: Double])

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .none
            } else if (try? container.decode(String.self)) == "balanced" {
                self = .balanced
            } else {
                self = .custom(try container.decode([String: Double].self))
            }
        }
    }

    let name: String
    let kernel: String
    let C: Double
    let gamma: GammaSetting
    let degree: Int
    let coef0: Double
    let class_weight: WeightSetting
    let probability: Bool
    let x_train: [[Float]]
    let y_train: [Int]
    let x_test: [[Float]]
    let classes: [Int]
    let gamma_value: Double
    let class_weight_values: [Double]
    let support: [Int]
    let n_support: [Int]
    let dual_coef: [[Double]]
    let intercept: [Double]
    let n_iter: [Int]
    let objective: [Double]
    let decision: [[Double]]
    let predict: [Int]
    let proba: [[Double]]?
    let proba_spread: Double?

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/SVM")

    static let names = [
        "separable_linear", "overlap_rbf", "overlap_linear", "imbalanced_rbf", "imbalanced_balanced",
        "three_class_rbf", "three_class_weighted", "four_class_linear", "poly", "sigmoid",
    ]

    static func load(_ name: String) throws -> SVMFixture {
        try JSONDecoder().decode(SVMFixture.self, from: Data(contentsOf: folder.appendingPathComponent(name + ".json")))
    }

    var xTrain: Tensor { Self.matrix(x_train) }
    var xTest: Tensor { Self.matrix(x_test) }

    static func matrix(_ rows: [[Float]]) -> Tensor {
        let d = rows.first?.count ?? 0
        return Tensor(uninitializedShape: [rows.count, d]) { out in
            for (r, row) in rows.enumerated() { for (c, value) in row.enumerated() { out[r * d + c] = value } }
        }
    }

    /// The scikit-learn settings as `SVMOptions`.
    var options: SVMOptions {
        let gammaSetting: Gamma
        switch gamma {
        case .named("auto"): gammaSetting = .auto
        case .named: gammaSetting = .scale
        case .number(let value): gammaSetting = .value(value)
        }
        let kernelSetting: SVMKernel
        switch kernel {
        case "linear": kernelSetting = .linear
        case "poly": kernelSetting = .polynomial(degree: degree, gamma: gammaSetting, coef0: coef0)
        case "sigmoid": kernelSetting = .sigmoid(gamma: gammaSetting, coef0: coef0)
        default: kernelSetting = .rbf(gamma: gammaSetting)
        }
        let weights: ClassWeight
        switch class_weight {
        case .none: weights = .none
        case .balanced: weights = .balanced
        case .custom(let byLabel):
            weights = .custom(Dictionary(uniqueKeysWithValues: byLabel.compactMap { key, value in Int(key).map { ($0, value) } }))
        }
        return SVMOptions(kernel: kernelSetting, c: C, classWeight: weights, probability: probability)
    }
}
