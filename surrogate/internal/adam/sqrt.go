package adam

import "math"

// sqrt is the correctly rounded square root in T: for float32 the float64
// root rounded once, which is the float32 root (53 ≥ 2·24 + 2 bits).
func sqrt[T Float](x T) T { return T(math.Sqrt(float64(x))) }
