import Autoencoders
import Classification
import Cohort
import Foundation

/// The checks that keep test information out of training, each refusing the experiment with
/// the participant and files at fault.
enum LeakageGuard {
    /// Within a fold no participant is on both sides (checked when the fold is read); across
    /// folds, a participant is evaluated in one fold only (pooled predictions would otherwise
    /// count it twice), and every fold evaluates some of the task's participants.
    static func checkFolds(_ folds: [Fold], task: ClassificationTask) throws(CompareError) {
        var evaluatedIn: [String: Int] = [:]
        for (index, fold) in folds.enumerated() {
            for participant in fold.split.validation.participants {
                if let first = evaluatedIn[participant], first != index {
                    throw .leakage("participant \(participant) is in the validation sets of folds \(first) and \(index) (\(fold.folder.path)): each participant is evaluated once")
                }
                evaluatedIn[participant] = index
            }
            guard fold.validationParticipants(task: task) > 0 else {
                throw .config("\(fold.folder.path)/validation.tsv has no \(task.classes.map(\.rawValue).joined(separator: " or ")) participant to evaluate")
            }
        }
    }

    /// The unlabelled scans added to pretraining must not belong to an evaluated participant;
    /// an independent set must share no participant with the experiment's manifest at all.
    static func checkUnlabelled(_ unlabelled: Manifest, manifest: Manifest, folds: [Fold], mode: PretrainingMode) throws(CompareError) {
        let own = Set(unlabelled.participants)
        switch mode {
        case .independent:
            if let shared = manifest.participants.first(where: own.contains) {
                throw .leakage("participant \(shared) is in the independent pretraining set and in the experiment's manifest: an independent set shares no participant")
            }
        case .perFold:
            for (index, fold) in folds.enumerated() {
                if let evaluated = fold.split.validation.participants.first(where: own.contains) {
                    throw .leakage("participant \(evaluated) of fold \(index)'s validation set is in unlabelled_manifest, which every fold pretrains on")
                }
            }
        }
    }

    /// A reused pretraining run must not have seen any participant that a fold evaluates.
    static func checkRun(_ url: URL, folds: [Fold], task: ClassificationTask) throws(CompareError) {
        let provenance: PretrainProvenance
        do { provenance = try PretrainedRun.load(url).provenance } catch { throw .config("encoder run \(url.path): \(error)") }
        let seen = Set(provenance.trainingParticipants + provenance.validationParticipants)
        for (index, fold) in folds.enumerated() {
            if let evaluated = fold.split.validation.participants.first(where: seen.contains) {
                throw .leakage("the reused run \(url.path) was pretrained on participant \(evaluated), whom fold \(index) evaluates: pretrain per fold, or on an independent set")
            }
        }
    }
}
