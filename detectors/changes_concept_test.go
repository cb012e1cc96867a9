package detectors

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/driftd/driftd/simulate"
)

var updateConcept = flag.Bool("update-concept", false, "rewrite testdata/concept_streams.json (then run testdata/gen_changes.py)")

// conceptStream is one measured stream: a simulator loss stream and where its change is.
type conceptStream struct {
	Name     string `json:"name"`
	Position int    `json:"position"` // -1 for a stationary stream
	Width    int    `json:"width"`
	N        int    `json:"n"`
	// Losses packs the 0/1 losses four to a hex digit, the first loss in the digit's
	// high bit (small enough to commit; gen_changes.py unpacks it).
	Losses string `json:"losses"`
}

const conceptSeeds, conceptN, conceptPos, conceptWidth = 5, 3000, 1500, 500

// conceptStreams are the measured streams: SEA (variant 0 → 3) and Agrawal (function
// 0 → 2), each abrupt, gradual and stationary, with 10% label noise, over five seeds.
func conceptStreams(t testing.TB) ([]conceptStream, [][]float64) {
	type spec struct {
		name          string
		family        simulate.ConceptFamily
		before, after int
		width         int
		stationary    bool
	}
	specs := []spec{
		{"sea-abrupt", simulate.SEA, 0, 3, 1, false},
		{"sea-gradual", simulate.SEA, 0, 3, conceptWidth, false},
		{"sea-stationary", simulate.SEA, 0, 0, 1, true},
		{"agrawal-abrupt", simulate.Agrawal, 0, 2, 1, false},
		{"agrawal-gradual", simulate.Agrawal, 0, 2, conceptWidth, false},
		{"agrawal-stationary", simulate.Agrawal, 0, 0, 1, true},
	}
	var out []conceptStream
	var losses [][]float64
	for _, sp := range specs {
		for seed := uint64(1); seed <= conceptSeeds; seed++ {
			s, err := simulate.NewConceptStream(simulate.ConceptStreamConfig{Family: sp.family, Before: sp.before, After: sp.after,
				Position: conceptPos, Width: sp.width, Noise: 0.1, Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			l := s.Losses(conceptN)
			cs := conceptStream{Name: fmt.Sprintf("%s/%d", sp.name, seed), Position: conceptPos, Width: sp.width, N: conceptN, Losses: packLosses(l)}
			if sp.stationary {
				cs.Position, cs.Width = -1, 0
			}
			out = append(out, cs)
			losses = append(losses, l)
		}
	}
	return out, losses
}

func packLosses(l []float64) string {
	var b strings.Builder
	for i := 0; i < len(l); i += 4 {
		d := 0
		for j := 0; j < 4; j++ {
			d <<= 1
			if i+j < len(l) && l[i+j] == 1 {
				d |= 1
			}
		}
		b.WriteByte("0123456789abcdef"[d])
	}
	return b.String()
}

// conceptScore sums one detector's results over streams.
type conceptScore struct {
	changes, detected int
	delays            []int
	falseAlarms       int
	stationary        int // values in stationary parts
}

// score adds one stream: detections in [position − 2·width, end) count toward the
// change (the first one's distance from the position is the delay, negative when a
// gradual change is caught before its midpoint); detections before that, or anywhere
// in a stationary stream, are false alarms.
func (s *conceptScore) score(cs conceptStream, drifts []int) {
	start := cs.N
	if cs.Position >= 0 {
		start = cs.Position - 2*cs.Width
		s.changes++
	}
	s.stationary += start
	first := true
	for _, i := range drifts {
		if i < start {
			s.falseAlarms++
		} else if first {
			first = false
			s.detected++
			s.delays = append(s.delays, i-cs.Position)
		}
	}
}

// delayCell is "detected/changes: median (mean)" of the delays.
func (s conceptScore) delayCell() string {
	if len(s.delays) == 0 {
		return fmt.Sprintf("0/%d", s.changes)
	}
	d := slices.Clone(s.delays)
	slices.Sort(d)
	sum := 0
	for _, v := range d {
		sum += v
	}
	return fmt.Sprintf("%d/%d: %d (%.0f)", s.detected, s.changes, d[len(d)/2], float64(sum)/float64(len(d)))
}

type conceptRiver struct {
	River   string                          `json:"river"`
	Streams map[string]map[string]changeRun `json:"streams"`
}

// TestConceptStreamsLikeRiver runs every detector (defaults; KSWIN seed 42) on the
// simulator's SEA and Agrawal loss streams and on River's run over the identical
// streams (testdata/concept_river.json): the deterministic detectors' drift indices
// must be River's exactly; the per-family delay and false-alarm table that
// docs/concept-drift.md shows is logged (go test -run TestConceptStreamsLikeRiver -v).
func TestConceptStreamsLikeRiver(t *testing.T) {
	streams, losses := conceptStreams(t)
	if *updateConcept {
		b, err := json.Marshal(map[string]any{"streams": streams})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/concept_streams.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("wrote testdata/concept_streams.json; now run testdata/gen_changes.py")
		return
	}
	b, err := os.ReadFile("testdata/concept_streams.json")
	if err != nil {
		t.Fatal(err)
	}
	var committed struct{ Streams []conceptStream }
	if err := json.Unmarshal(b, &committed); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(committed.Streams, streams) {
		t.Fatal("the simulator's streams differ from testdata/concept_streams.json (rerun with -update-concept, then gen_changes.py)")
	}
	b, err = os.ReadFile("testdata/concept_river.json")
	if err != nil {
		t.Fatal(err)
	}
	var river conceptRiver
	if err := json.Unmarshal(b, &river); err != nil {
		t.Fatal(err)
	}
	if river.River != "0.26.1" || len(river.Streams) != len(streams) {
		t.Fatalf("River %q results for %d streams, want %d", river.River, len(river.Streams), len(streams))
	}

	scenarios := []string{"sea-abrupt", "sea-gradual", "agrawal-abrupt", "agrawal-gradual"}
	var table strings.Builder
	table.WriteString("| detector | run | SEA abrupt | SEA gradual | Agrawal abrupt | Agrawal gradual | false alarms (per 1000 stationary values) |\n|---|---|---|---|---|---|---|\n")
	for _, kind := range ChangeKinds() {
		ours, theirs := map[string]*conceptScore{}, map[string]*conceptScore{}
		var oursAll, theirsAll conceptScore
		for i, cs := range streams {
			got := runChange(newDefaultChange(t, kind), losses[i]).Drifts
			want := river.Streams[cs.Name][kind.String()].Drifts
			if kind != ChangeKSWIN && !slices.Equal(got, want) {
				t.Errorf("%s on %s: drifts %v, River %v", kind, cs.Name, got, want)
			}
			scenario := strings.SplitN(cs.Name, "/", 2)[0]
			if ours[scenario] == nil {
				ours[scenario], theirs[scenario] = &conceptScore{}, &conceptScore{}
			}
			ours[scenario].score(cs, got)
			theirs[scenario].score(cs, want)
			oursAll.score(cs, got)
			theirsAll.score(cs, want)
		}
		for _, run := range []struct {
			name string
			by   map[string]*conceptScore
			all  conceptScore
		}{{"driftd", ours, oursAll}, {"River", theirs, theirsAll}} {
			fmt.Fprintf(&table, "| %s | %s |", kind, run.name)
			for _, sc := range scenarios {
				fmt.Fprintf(&table, " %s |", run.by[sc].delayCell())
			}
			fmt.Fprintf(&table, " %d (%.2f) |\n", run.all.falseAlarms, 1000*float64(run.all.falseAlarms)/float64(run.all.stationary))
		}
	}
	t.Log("\n" + table.String())
}
