/// Classifier back ends over feature matrices: the SMO support vector classifier (libsvm),
/// the linear SVM fast path (liblinear) and FastICA.
