package simulate

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"
)

type conceptReference struct {
	River    string             `json:"river"`
	N        int                `json:"n"`
	SEA      map[string]float64 `json:"sea_class1"`
	Agrawal  map[string]float64 `json:"agrawal_class1"`
	Disagree []struct {
		Family string  `json:"family"`
		Before int     `json:"before"`
		After  int     `json:"after"`
		Share  float64 `json:"share"`
	} `json:"disagree"`
}

func loadConceptReference(t *testing.T) conceptReference {
	t.Helper()
	b, err := os.ReadFile("testdata/concept_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref conceptReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.River != "0.26.1" || len(ref.SEA) != 4 || len(ref.Agrawal) != 10 {
		t.Fatalf("reference from River %q: %d SEA, %d Agrawal shares", ref.River, len(ref.SEA), len(ref.Agrawal))
	}
	return ref
}

// closeShare fails unless two binomial shares, from n1 and n2 draws, differ by less
// than 4.5 standard errors of their difference (plus 1e-9 for shares of 0 or 1).
func closeShare(t *testing.T, what string, got float64, n1 int, want float64, n2 int) {
	t.Helper()
	p := (got + want) / 2
	se := math.Sqrt(p*(1-p)/float64(n1) + p*(1-p)/float64(n2))
	if math.Abs(got-want) > 4.5*se+1e-9 {
		t.Errorf("%s: %.5f, River %.5f (%.1f standard errors)", what, got, want, math.Abs(got-want)/se)
	}
}

// TestConceptClassBalance: the share of class 1 of every SEA variant and every Agrawal
// function matches River's generators (testdata/gen_concept.py).
func TestConceptClassBalance(t *testing.T) {
	ref := loadConceptReference(t)
	const n = 100_000
	cases := []struct {
		family ConceptFamily
		max    int
		want   map[string]float64
	}{
		{SEA, 3, ref.SEA},
		{Agrawal, 9, ref.Agrawal},
	}
	for _, c := range cases {
		for concept := 0; concept <= c.max; concept++ {
			name := c.family.String() + "/" + strconv.Itoa(concept)
			t.Run(name, func(t *testing.T) {
				s, err := NewConceptStream(ConceptStreamConfig{Family: c.family, Before: concept, After: concept, Position: 1, Width: 1, Seed: 7})
				if err != nil {
					t.Fatal(err)
				}
				ones := 0
				for i := 0; i < n; i++ {
					ones += s.Next().Y
				}
				got := float64(ones) / n
				closeShare(t, name+" class 1", got, n, c.want[strconv.Itoa(concept)], ref.N)
				t.Logf("%s: class 1 share %.4f (River %.4f)", name, got, c.want[strconv.Itoa(concept)])
			})
		}
	}
}

// TestConceptModelLoss: the model that keeps the old concept's rule is perfect before
// the drift (no noise) and wrong on River's disagreement share of examples after it;
// with label noise η its error is η before and d(1−2η)+η after.
func TestConceptModelLoss(t *testing.T) {
	ref := loadConceptReference(t)
	const pos, width, after = 5000, 500, 50_000
	for _, d := range ref.Disagree {
		family := SEA
		if d.Family == "agrawal" {
			family = Agrawal
		}
		for _, noise := range []float64{0, 0.1} {
			name := d.Family + "/" + strconv.Itoa(d.Before) + "-" + strconv.Itoa(d.After) + "/noise=" + strconv.FormatFloat(noise, 'g', -1, 64)
			t.Run(name, func(t *testing.T) {
				s, err := NewConceptStream(ConceptStreamConfig{Family: family, Before: d.Before, After: d.After,
					Position: pos, Width: width, Noise: noise, Seed: 3})
				if err != nil {
					t.Fatal(err)
				}
				losses := s.Losses(pos + 2*width + after)
				// Before pos − 2·width the new concept's share is below 1/(1+e⁸) ≈ 0.03%.
				pre := mean(losses[:pos-2*width])
				post := mean(losses[pos+2*width:])
				wantPost := d.Share*(1-2*noise) + noise
				t.Logf("error before %.4f (want %.2f), after %.4f (River's disagreement %.4f → %.4f)", pre, noise, post, d.Share, wantPost)
				if noise == 0 && pre > 0.001 {
					t.Errorf("noiseless model wrong on %.4f before the drift", pre)
				}
				closeShare(t, "error before", pre, pos-2*width, noise, 1<<40)
				closeShare(t, "error after", post, after, wantPost, ref.N)
				if post < pre+0.05 {
					t.Errorf("error after %.4f not clearly above before %.4f", post, pre)
				}
			})
		}
	}
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// TestConceptDriftMixing: the share of examples from the new concept follows River's
// sigmoid: 0 well before, ½ at the position, 1 well after; an abrupt stream switches
// at the position.
func TestConceptDriftMixing(t *testing.T) {
	cases := []struct {
		name           string
		width          int
		from, to       int
		wantLo, wantHi float64
	}{
		{"gradual well before", 1000, 0, 2000, 0, 0.01},
		{"gradual centre", 1000, 4900, 5100, 0.35, 0.65},
		{"gradual well after", 1000, 8000, 10000, 0.99, 1},
		{"abrupt before", 1, 0, 4999, 0, 0},
		{"abrupt after", 1, 5001, 10000, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewConceptStream(ConceptStreamConfig{Family: SEA, Before: 0, After: 3, Position: 5000, Width: c.width, Seed: 11})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for i := 0; i < c.to; i++ {
				if x := s.Next(); i >= c.from {
					n += x.Concept
				}
			}
			share := float64(n) / float64(c.to-c.from)
			if share < c.wantLo || share > c.wantHi {
				t.Fatalf("new-concept share %.4f outside [%v, %v]", share, c.wantLo, c.wantHi)
			}
		})
	}
}

func TestConceptStreamDeterministic(t *testing.T) {
	cfg := ConceptStreamConfig{Family: Agrawal, Before: 0, After: 2, Position: 300, Width: 100, Noise: 0.1, Perturbation: 0.05, Seed: 5}
	a, _ := NewConceptStream(cfg)
	b, _ := NewConceptStream(cfg)
	cfg.Seed = 6
	c, _ := NewConceptStream(cfg)
	same, diff := 0, 0
	for i := 0; i < 1000; i++ {
		x, y, z := a.Next(), b.Next(), c.Next()
		if x.Y == y.Y && x.X[0] == y.X[0] && x.X[6] == y.X[6] && x.Loss == y.Loss {
			same++
		}
		if x.X[0] != z.X[0] {
			diff++
		}
	}
	if same != 1000 || diff < 990 {
		t.Fatalf("same seed: %d of 1000 equal; other seed: %d of 1000 differ", same, diff)
	}
}

func TestConceptStreamConfigRejected(t *testing.T) {
	cases := []struct {
		name string
		c    ConceptStreamConfig
	}{
		{"family", ConceptStreamConfig{Width: 1}},
		{"sea variant", ConceptStreamConfig{Family: SEA, After: 4, Width: 1}},
		{"agrawal function", ConceptStreamConfig{Family: Agrawal, Before: -1, Width: 1}},
		{"width", ConceptStreamConfig{Family: SEA}},
		{"noise", ConceptStreamConfig{Family: SEA, Width: 1, Noise: 0.7}},
		{"perturbation", ConceptStreamConfig{Family: Agrawal, Width: 1, Perturbation: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewConceptStream(c.c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
