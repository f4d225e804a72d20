package report

import (
	"math"
	"testing"
)

// TestChiSquareSF checks the survival function against published critical
// values (the chi-square tables' 5% and 1% points) and against the closed
// form for even degrees of freedom, Q(k, x/2) = e^(-x/2) sum_{i<k} (x/2)^i/i!.
func TestChiSquareSF(t *testing.T) {
	evenClosed := func(x float64, df int) float64 {
		h, term, sum := x/2, 1.0, 0.0
		for i := range df / 2 {
			if i > 0 {
				term *= h / float64(i)
			}
			sum += term
		}
		return math.Exp(-h) * sum
	}
	for _, tc := range []struct {
		name string
		x    float64
		df   int
		want float64
		tol  float64
	}{
		{"5% point, 1 df", 3.841458820694124, 1, 0.05, 1e-9},
		{"1% point, 1 df", 6.634896601021214, 1, 0.01, 1e-9},
		{"5% point, 9 df", 16.918977604620448, 9, 0.05, 1e-9},
		{"1% point, 9 df", 21.665994333461924, 9, 0.01, 1e-9},
		{"median, 9 df", 8.342832692252779, 9, 0.5, 1e-9},
		{"x 0", 0, 9, 1, 0},
		{"2, 2 df (e^-1)", 2, 2, math.Exp(-1), 1e-12},
		{"1, 10 df", 1, 10, evenClosed(1, 10), 1e-12},
		{"10, 4 df", 10, 4, evenClosed(10, 4), 1e-12},
		{"60, 10 df (far tail)", 60, 10, evenClosed(60, 10), 1e-20},
		{"9.3, 10 df (near the mean: series/fraction seam)", 9.3, 10, evenClosed(9.3, 10), 1e-12},
		{"12, 10 df", 12, 10, evenClosed(12, 10), 1e-12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ChiSquareSF(tc.x, tc.df); math.Abs(got-tc.want) > tc.tol {
				t.Errorf("ChiSquareSF(%v, %d) = %.15g, want %.15g", tc.x, tc.df, got, tc.want)
			}
		})
	}
	if !math.IsNaN(ChiSquareSF(1, 0)) {
		t.Error("0 degrees of freedom gave a p-value")
	}
}

func TestChiSquareFlat(t *testing.T) {
	for _, tc := range []struct {
		name        string
		wins, tries []int
		wantDF      int
		pAbove      float64 // p must be above (NaN: p must be NaN)
		pBelow      float64
	}{
		{"flat", []int{10, 10, 10, 10}, []int{100, 100, 100, 100}, 3, 0.99, 1.01},
		{"early wins all", []int{40, 0, 0, 0}, []int{100, 100, 100, 100}, 3, -1, 1e-10},
		{"empty slices are left out", []int{10, 0, 10}, []int{100, 0, 100}, 1, 0.99, 1.01},
		{"nobody won", []int{0, 0}, []int{10, 10}, 0, math.NaN(), 0},
		{"one slice", []int{3}, []int{10}, 0, math.NaN(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stat, df, p := ChiSquareFlat(tc.wins, tc.tries)
			if math.IsNaN(tc.pAbove) {
				if !math.IsNaN(p) {
					t.Fatalf("p %v, want none", p)
				}
				return
			}
			if df != tc.wantDF || !(p > tc.pAbove && p < tc.pBelow) {
				t.Errorf("stat %v df %d p %v, want df %d and p in (%v, %v)", stat, df, p, tc.wantDF, tc.pAbove, tc.pBelow)
			}
		})
	}
	// A hand-computed table: wins 30 and 10 of 100 each, pooled 0.2:
	// (30-20)^2/20 + (70-80)^2/80 + (10-20)^2/20 + (90-80)^2/80 = 12.5.
	stat, df, p := ChiSquareFlat([]int{30, 10}, []int{100, 100})
	if math.Abs(stat-12.5) > 1e-12 || df != 1 || math.Abs(p-ChiSquareSF(12.5, 1)) > 1e-15 {
		t.Errorf("stat %v df %d p %v, want 12.5, 1, sf(12.5, 1)", stat, df, p)
	}
}
