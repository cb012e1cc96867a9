package simulate

// Synthetic concept-drift streams for the change detectors (detectors/changes.go): the
// SEA and Agrawal generators as River's synth.SEA and synth.Agrawal define them, mixed
// from one concept to another the way River's ConceptDriftStream does (the new concept
// is drawn with probability 1/(1 + e^(−4(i − position)/width))), plus a fixed "model"
// that predicts with the first concept's rule: its 0/1 loss is the error stream a
// deployed model would produce when the world's x → y mapping changes under it.
//
// Why by hand: River is Python; these are small rule sets. Draws come from driftd's
// seeded PCG, not Python's Mersenne Twister, so the streams are River's in law, not
// value by value.

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// ConceptFamily names a generator.
type ConceptFamily uint8

const (
	// SEA: three features uniform on [0, 10); y = x0 + x1 > θ with θ = 8, 9, 7, 9.5 for
	// variants 0-3 (x2 is irrelevant).
	SEA ConceptFamily = iota + 1
	// Agrawal: nine loan-applicant features (salary, commission, age, elevel, car,
	// zipcode, hvalue, hyears, loan) and ten classification functions 0-9.
	Agrawal
)

func (f ConceptFamily) String() string {
	switch f {
	case SEA:
		return "sea"
	case Agrawal:
		return "agrawal"
	}
	return fmt.Sprintf("ConceptFamily(%d)", uint8(f))
}

// seaThreshold is River's SEA threshold of a variant.
func seaThreshold(variant int) float64 {
	return [4]float64{8, 9, 7, 9.5}[variant]
}

// AgrawalFeatures are the Agrawal generator's feature names, in ConceptSample.X order.
func AgrawalFeatures() [9]string {
	return [9]string{"salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan"}
}

// ConceptStreamConfig describes one stream.
type ConceptStreamConfig struct {
	Family ConceptFamily
	// Before and After are the concepts (SEA variant 0-3, Agrawal function 0-9) before
	// and after the drift; equal for a stationary stream.
	Before, After int
	// Position is the index at which half the values come from the new concept; Width
	// the length of the transition (1 for an abrupt change, as in River's
	// ConceptDriftStream, where the sigmoid is then a step).
	Position, Width int
	// Noise flips each label with this probability (River's SEA noise; applied to
	// Agrawal too so that the model's error rate before the drift is not zero).
	Noise float64
	// Perturbation moves Agrawal's numeric features by up to this share of their range
	// after labelling (River's perturbation); SEA ignores it.
	Perturbation float64
	Seed         uint64
}

func (c ConceptStreamConfig) validate() error {
	max := 0
	switch c.Family {
	case SEA:
		max = 3
	case Agrawal:
		max = 9
	default:
		return fmt.Errorf("concept stream: unknown family %d", c.Family)
	}
	switch {
	case c.Before < 0 || c.Before > max || c.After < 0 || c.After > max:
		return fmt.Errorf("concept stream: %s concepts %d, %d outside [0, %d]", c.Family, c.Before, c.After, max)
	case c.Width < 1:
		return fmt.Errorf("concept stream: width %d < 1", c.Width)
	case !(c.Noise >= 0 && c.Noise <= 0.5):
		return fmt.Errorf("concept stream: noise %v outside [0, 0.5]", c.Noise)
	case !(c.Perturbation >= 0 && c.Perturbation <= 1):
		return fmt.Errorf("concept stream: perturbation %v outside [0, 1]", c.Perturbation)
	}
	return nil
}

// ConceptSample is one labelled example and the fixed model's verdict on it.
type ConceptSample struct {
	// X holds the features: SEA's x0, x1, x2, or AgrawalFeatures in order. The slice
	// is reused by the next call to Next.
	X []float64
	// Y is the true label (after noise); Concept is 0 when the old concept labelled
	// the example, 1 when the new one did.
	Y, Concept int
	// Pred is the model's prediction: the old concept's rule, without noise, on X.
	Pred int
	// Loss is 1 when Pred != Y.
	Loss float64
}

// ConceptStream generates a ConceptStreamConfig's examples in order.
type ConceptStream struct {
	c   ConceptStreamConfig
	rng *rand.Rand
	i   int
	x   []float64
}

// NewConceptStream returns the stream's generator.
func NewConceptStream(c ConceptStreamConfig) (*ConceptStream, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	n := 3
	if c.Family == Agrawal {
		n = 9
	}
	return &ConceptStream{c: c, rng: rand.New(rand.NewPCG(c.Seed, 0xc0ffee)), x: make([]float64, n)}, nil
}

// NewConceptProbability is the chance that example i (from 0) comes from the new
// concept: River's ConceptDriftStream sigmoid, which counts examples from 1.
func NewConceptProbability(i, position, width int) float64 {
	v := -4.0 * float64(i+1-position) / float64(width)
	return 1.0 / (1.0 + math.Exp(v))
}

// Next draws the next example.
func (s *ConceptStream) Next() ConceptSample {
	concept := s.c.Before
	out := ConceptSample{X: s.x}
	if s.rng.Float64() < NewConceptProbability(s.i, s.c.Position, s.c.Width) {
		concept, out.Concept = s.c.After, 1
	}
	s.i++
	switch s.c.Family {
	case SEA:
		for j := range s.x {
			s.x[j] = 10 * s.rng.Float64()
		}
		out.Y = seaClass(concept, s.x)
	case Agrawal:
		out.Y = s.agrawal(concept)
	}
	if s.c.Noise > 0 && s.rng.Float64() < s.c.Noise {
		out.Y = 1 - out.Y
	}
	if s.c.Family == SEA {
		out.Pred = seaClass(s.c.Before, s.x)
	} else {
		out.Pred = agrawalClass(s.c.Before, s.x)
	}
	if out.Pred != out.Y {
		out.Loss = 1
	}
	return out
}

// Losses returns the model's first n losses.
func (s *ConceptStream) Losses(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = s.Next().Loss
	}
	return out
}

func seaClass(variant int, x []float64) int {
	if x[0]+x[1] > seaThreshold(variant) {
		return 1
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// agrawal draws River's Agrawal features, labels them with function fn, then perturbs.
func (s *ConceptStream) agrawal(fn int) int {
	r := s.rng
	salary := 20000 + 130000*r.Float64()
	commission := 0.0
	if salary < 75000 {
		commission = 10000 + 75000*r.Float64()
	}
	age := float64(20 + r.IntN(61))
	elevel := float64(r.IntN(5))
	car := float64(1 + r.IntN(20))
	zipcode := float64(r.IntN(9))
	hvalue := (8 - zipcode) * 100000 * (0.5 + r.Float64())
	hyears := float64(1 + r.IntN(30))
	loan := r.Float64() * 500000
	x := s.x
	x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8] = salary, commission, age, elevel, car, zipcode, hvalue, hyears, loan
	y := agrawalClass(fn, x)
	if p := s.c.Perturbation; p > 0 {
		perturb := func(v, lo, hi, rng float64) float64 {
			v += rng * (2 * (r.Float64() - 0.5)) * p
			// River's clamp, lower bound first (it matters for hvalue below).
			if v < lo {
				return lo
			} else if v > hi {
				return hi
			}
			return v
		}
		x[0] = perturb(salary, 20000, 150000, 130000)
		if commission > 0 {
			x[1] = perturb(commission, 10000, 75000, 65000)
		}
		x[2] = math.Round(perturb(age, 20, 80, 60))
		// River passes (9 − zipcode)·100000 as the minimum and 0 as the maximum here
		// (its range argument is 135000), so a perturbed hvalue ends at that minimum or
		// at 0; kept as River does it, so the features' law is River's.
		x[6] = perturb(hvalue, (9-zipcode)*100000, 0, 135000)
		x[7] = math.Round(perturb(hyears, 1, 30, 29))
		x[8] = perturb(loan, 0, 500000, 500000)
	}
	return y
}

// agrawalClass is River's Agrawal classification function fn (0-9) on x in
// AgrawalFeatures order. Function 4 is River's as written: in its under-60 branches it
// compares salary (at most 150000) with 200000-500000, bounds the paper puts on loan.
func agrawalClass(fn int, x []float64) int {
	salary, commission, age, elevel, hvalue, hyears, loan := x[0], x[1], x[2], x[3], x[6], x[7], x[8]
	in := func(v, lo, hi float64) bool { return lo <= v && v <= hi }
	switch fn {
	case 0:
		return b2i(age < 40 || 60 <= age)
	case 1:
		switch {
		case age < 40:
			return b2i(in(salary, 50000, 100000))
		case age < 60:
			return b2i(in(salary, 75000, 125000))
		}
		return b2i(in(salary, 25000, 75000))
	case 2:
		switch {
		case age < 40:
			return b2i(elevel == 0 || elevel == 1)
		case age < 60:
			return b2i(elevel >= 1 && elevel <= 3)
		}
		return b2i(elevel >= 2 && elevel <= 4)
	case 3:
		switch {
		case age < 40:
			if elevel == 0 || elevel == 1 {
				return b2i(in(salary, 25000, 75000))
			}
			return b2i(in(salary, 50000, 100000))
		case age < 60:
			if elevel >= 1 && elevel <= 3 {
				return b2i(in(salary, 50000, 100000))
			}
			return b2i(in(salary, 75000, 125000))
		}
		if elevel >= 2 && elevel <= 4 {
			return b2i(in(salary, 50000, 100000))
		}
		return b2i(in(salary, 25000, 75000))
	case 4:
		switch {
		case age < 40:
			if in(salary, 50000, 100000) {
				return b2i(in(loan, 100000, 300000))
			}
			return b2i(in(salary, 200000, 400000))
		case age < 60:
			if in(salary, 75000, 125000) {
				return b2i(200000 <= salary && loan <= 400000)
			}
			return b2i(in(salary, 300000, 500000))
		}
		if in(salary, 25000, 75000) {
			return b2i(in(loan, 300000, 500000))
		}
		return b2i(in(loan, 75000, 300000))
	case 5:
		total := salary + commission
		switch {
		case age < 40:
			return b2i(in(total, 50000, 100000))
		case age < 60:
			return b2i(in(total, 75000, 125000))
		}
		return b2i(in(total, 25000, 75000))
	case 6:
		return b2i(!(2*(salary+commission)/3-loan/5-20000 > 1))
	case 7:
		return b2i(!(2*(salary+commission)/3-5000*elevel-20000 > 1))
	case 8:
		return b2i(!(2*(salary+commission)/3-5000*elevel-loan/5-10000 > 1))
	case 9:
		equity := 0.0
		if hyears >= 20 {
			equity = hvalue * (hyears - 20) / 10
		}
		return b2i(!(2*(salary+commission)/3-5000*elevel+equity/5-10000 > 1))
	}
	return 0
}
