package report

import "math"

// ChiSquareSF is the chi-square distribution's survival function: the
// chance that a chi-square variable with df degrees of freedom is at
// least x, which is the p-value of a chi-square test. It is the
// regularized upper incomplete gamma function Q(df/2, x/2), computed by
// its series below a+1 and its continued fraction above (Numerical
// Recipes' gammq), to about 1e-12. NaN for df <= 0 or x NaN.
func ChiSquareSF(x float64, df int) float64 {
	if df <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return gammaQ(float64(df)/2, x/2)
}

// gammaQ is Q(a, x) = Γ(a, x)/Γ(a) for a > 0, x > 0.
func gammaQ(a, x float64) float64 {
	if x < a+1 {
		return 1 - gammaPSeries(a, x)
	}
	return gammaQFraction(a, x)
}

const (
	gammaEps   = 1e-15
	gammaIters = 1000
	gammaTiny  = 1e-300
)

// gammaPSeries is P(a, x) by its series, converging fast for x < a+1.
func gammaPSeries(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	ap, sum := a, 1/a
	del := sum
	for range gammaIters {
		ap++
		del *= x / ap
		sum += del
		if math.Abs(del) < math.Abs(sum)*gammaEps {
			break
		}
	}
	return sum * math.Exp(-x+a*math.Log(x)-lg)
}

// gammaQFraction is Q(a, x) by its continued fraction (modified Lentz),
// converging fast for x >= a+1.
func gammaQFraction(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	b := x + 1 - a
	c := 1 / gammaTiny
	d := 1 / b
	h := d
	for i := 1; i <= gammaIters; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < gammaTiny {
			d = gammaTiny
		}
		c = b + an/c
		if math.Abs(c) < gammaTiny {
			c = gammaTiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < gammaEps {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}

// ChiSquareFlat tests whether wins[i] out of tries[i] is the same chance
// in every slice (a 2 x k table of wins and losses against the pooled
// rate): the statistic, its degrees of freedom (the slices with anyone in
// them, less one) and its p-value. A small p says the chance depends on
// the slice. With no win or no loss at all, or fewer than two slices
// holding anyone, there is nothing to test: p is NaN.
func ChiSquareFlat(wins, tries []int) (stat float64, df int, p float64) {
	var w, n float64
	slices := 0
	for i := range tries {
		if tries[i] > 0 {
			slices++
			w += float64(wins[i])
			n += float64(tries[i])
		}
	}
	if slices < 2 || w == 0 || w == n {
		return math.NaN(), 0, math.NaN()
	}
	rate := w / n
	for i := range tries {
		if tries[i] == 0 {
			continue
		}
		t := float64(tries[i])
		ew, el := t*rate, t*(1-rate)
		ow := float64(wins[i])
		ol := t - ow
		stat += (ow-ew)*(ow-ew)/ew + (ol-el)*(ol-el)/el
	}
	df = slices - 1
	return stat, df, ChiSquareSF(stat, df)
}
