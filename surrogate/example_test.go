package surrogate_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/surrogate"
)

// A locality-aware surrogate of a 2→1 function, trained with GradPIE-kNN,
// supplies the gradient of the black box through its VJP.
func ExampleTrainer() {
	space := insitu.Box(2, -1, 1)
	f := func(x []float64) []float64 { return []float64{math.Sin(2*x[0]) + x[1]*x[1]} }

	model, err := surrogate.NewModel(space, 1, surrogate.Arch{Hidden: []int{32, 32}}, 1)
	if err != nil {
		panic(err)
	}
	data := surrogate.NewDataset(model)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 400 {
		x := []float64{2*rng.Float64() - 1, 2*rng.Float64() - 1}
		data.Append(x, f(x))
	}
	tr, err := surrogate.NewTrainer(model, surrogate.TrainConfig{Loss: surrogate.LossGradPIE, K: 5, Batch: 32, LR: 3e-3}, 1)
	if err != nil {
		panic(err)
	}
	first := math.NaN()
	last, err := tr.Fit(context.Background(), data, 60, func(epoch int, loss float64) {
		if epoch == 0 {
			first = loss
		}
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("loss fell tenfold:", last < first/10)

	// ∇f at (0.3, 0.5) is (2cos(0.6), 1) ≈ (1.65, 1).
	g := model.VJP([]float64{0.3, 0.5}, []float64{1})
	exact := []float64{2 * math.Cos(0.6), 1}
	fmt.Println("gradient within 10%:", math.Hypot(g[0]-exact[0], g[1]-exact[1]) < 0.1*math.Hypot(exact[0], exact[1]))
	// Output:
	// loss fell tenfold: true
	// gradient within 10%: true
}

// The GradPIE loss compares differences between paired rows and ignores
// any constant offset between predictions and targets.
func ExampleGradPIELoss() {
	pred := []float64{0, 1, 3}   // three rows of one output
	target := []float64{5, 7, 8} // pred + 5, except row 1 is one higher
	pairs := [][2]int{{0, 1}, {1, 2}}
	grad := make([]float64, len(pred))
	loss := surrogate.GradPIELoss(pred, target, 1, pairs, surrogate.NormL1, grad)
	fmt.Println(loss, grad)
	// Output: 1 [0.5 -1 0.5]
}

// Models are saved with their input space and output scale.
func ExampleLoad() {
	model, _ := surrogate.NewModel(insitu.Box(3, 0, 10), 2, surrogate.Arch{Hidden: []int{16}, LayerNorm: true}, 7)
	model.SetOutputScale([][]float64{{1, 2}, {3, 5}})
	var file bytes.Buffer
	if err := model.Save(&file); err != nil {
		panic(err)
	}
	loaded, err := surrogate.Load(&file)
	if err != nil {
		panic(err)
	}
	x, v := []float64{1, 2, 3}, []float64{1, -1}
	same := fmt.Sprint(model.Predict(x), model.VJP(x, v)) == fmt.Sprint(loaded.Predict(x), loaded.VJP(x, v))
	fmt.Println("identical:", same)
	_, err = surrogate.Load(bytes.NewReader([]byte("not a model")))
	fmt.Println(err)
	// Output:
	// identical: true
	// surrogate: not an insitu surrogate file
}

// The raw network: batch Forward and Backward for training, VJP and
// Jacobian at a single point.
func ExampleMLP() {
	mlp, _ := surrogate.NewMLP(3, 2, surrogate.Arch{Hidden: []int{8}}, 1)
	fmt.Println("parameters:", mlp.NumParams())  // 3·8+8 + 8·2+2
	x := []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6} // two rows
	y := mlp.Forward(x, 2)
	dy := make([]float64, len(y))
	surrogate.MSE(y, []float64{0, 0, 0, 0}, dy)
	mlp.ZeroGrad()
	dx := mlp.Backward(dy)
	fmt.Println(len(y), len(dx), len(mlp.Grads()))
	fmt.Println(len(mlp.VJP(x[:3], []float64{1, 0})), len(mlp.Jacobian(x[:3])))
	// Output:
	// parameters: 50
	// 4 6 50
	// 3 6
}
