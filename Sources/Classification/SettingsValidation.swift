extension ClassifyRequest {
    /// Checks the back end's own settings (not its inputs), naming the first bad value.
    public func validateSettings() throws(ClassificationError) {
        try explanations?.validate()
        switch backend {
        case .svm:
            try svm.validate()
        case .icaSVM:
            try svm.validate()
            try ica.validate()
        case .cnn:
            try cnn.validate()
        }
    }
}
