// Package surrogate is the differentiable model f_θ ≈ F that insitu uses
// only for its input Jacobian: the optimizer queries the black box for
// y = F(x) and takes J_fθ(x)ᵀ·∇g(y) from the surrogate (Model.VJP).
//
// An MLP (Linear → optional LayerNorm → GELU per hidden layer, last layer
// linear) computes in float64 or float32 (Arch.Precision; datasets,
// neighbour search, losses and the model's inputs and outputs stay float64)
// and is wrapped by a Model that maps inputs by an
// InputScaling (raw, the box onto [−1, 1], the box's z-score, or the box
// onto [0, 1]) and outputs by an OutputScaling (raw, z-scored per
// component, or one common scale), so VJP and Jacobian are in raw units.
// The GradPIE neighbours are found in the scaled input space. A
// Trainer fits it with Adam on a Dataset under MAE, MSE or the GradPIE-kNN
// loss, which matches differences between each point and its k nearest
// neighbours, (f(x_j) − f(x_i)) − (y_j − y_i), and so teaches the Jacobian
// rather than the values. Each GradPIE minibatch runs one forward pass over
// the unique points (anchors plus their neighbours) and one backward pass.
//
// Matrix products go to the BLAS installed with gonum's blas64.Use and
// blas32.Use when it is not gonum's own (the OpenBLAS backend of package
// surrogate/openblas under the openblas build tag); otherwise to the
// packed, register-blocked kernels of internal/gemm, which are about ten
// times faster than gonum's pure-Go GEMM on the network's shapes. Adam's
// update is one vectorized pass (internal/adam). A float32 Trainer warns
// once when neighbouring points differ by less than float32 resolves.
//
// Models are saved in a versioned binary format with a JSON header and a
// CRC-32 (Model.Save, Load); Adam and Trainer state implement
// encoding.BinaryMarshaler for checkpoints.
package surrogate
