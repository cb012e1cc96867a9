package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

func baselineCmd() *cobra.Command {
	var model, ver, file string
	cmd := &cobra.Command{
		Use:   "baseline --model M --version V --file training.csv|.jsonl",
		Short: "Store a reference profile for a model version from its training data",
		Long: `Reads training data and stores it as the reference profile of a model version;
windows of that version are compared with it from then on (it replaces a reference built
from the first windows). CSV: a header row of feature names, one row per example; empty
cells are missing values; a column named "prediction" is the model's output. JSONL: one
object per line, either {"features": {...}, "prediction": ...} or a flat object of features.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if model == "" || ver == "" || file == "" {
				return errors.New("baseline needs --model, --version and --file")
			}
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			sample, err := readSample(file)
			if err != nil {
				return err
			}
			p := sample.Build(model, ver, detectors.SourceFile, 0, time.Now())
			st, closeEngine, err := openStore(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer closeEngine()
			defer st.Close()
			if _, err := st.Migrate(cmd.Context(), cfg.ClickHouse.RetentionDays); err != nil {
				return err
			}
			if err := st.SaveReference(cmd.Context(), p); err != nil {
				return err
			}
			names := make([]string, 0, len(p.Features))
			for n := range p.Features {
				names = append(names, n)
			}
			sort.Strings(names)
			fmt.Fprintf(cmd.OutOrStdout(), "stored reference %s for %s %s: %d rows, features %s\n", p.ID, model, ver, p.Events, strings.Join(names, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "model name")
	cmd.Flags().StringVar(&ver, "version", "", "model version")
	cmd.Flags().StringVar(&file, "file", "", "training data (.csv or .jsonl)")
	return cmd
}

// readSample reads a CSV or JSONL training file into a reference sample.
func readSample(path string) (*detectors.Sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer f.Close()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return readCSV(f, path)
	case ".jsonl", ".ndjson", ".json":
		return readJSONL(f, path)
	}
	return nil, fmt.Errorf("baseline: %s: use a .csv or .jsonl file", path)
}

func cell(s string) schemas.Value {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return schemas.Value{}
	case "true":
		return schemas.Value{Kind: schemas.Bool, Num: 1}
	case "false":
		return schemas.Value{Kind: schemas.Bool}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return schemas.Value{Kind: schemas.Number, Num: f}
	}
	return schemas.Value{Kind: schemas.String, Str: s}
}

func readCSV(r io.Reader, path string) (*detectors.Sample, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("baseline: %s: header: %w", path, err)
	}
	names := append([]string(nil), header...)
	s := detectors.NewSample()
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("baseline: %s line %d: %w", path, line, err)
		}
		s.Events++
		for i, v := range rec {
			name := names[i]
			if name == "prediction" {
				name = processors.PredictionFeature
			}
			s.Add(name, cell(v))
		}
	}
	if s.Events == 0 {
		return nil, fmt.Errorf("baseline: %s has no rows", path)
	}
	return s, nil
}

func readJSONL(r io.Reader, path string) (*detectors.Sample, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	s := detectors.NewSample()
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(text), &obj); err != nil {
			return nil, fmt.Errorf("baseline: %s line %d: %w", path, line, err)
		}
		scores, hasScores := obj["scores"]
		delete(obj, "scores")
		if raw, ok := obj["features"]; ok {
			// An event-shaped line: its features, plus its prediction.
			pred, hasPred := obj["prediction"]
			obj = nil
			if err := json.Unmarshal(raw, &obj); err != nil {
				return nil, fmt.Errorf("baseline: %s line %d: features: %w", path, line, err)
			}
			if hasPred {
				obj["prediction"] = pred
			}
		}
		if hasScores {
			// Class scores, as a prediction event carries them: the reference of the
			// model's confidence and entropy (processors.ScoreSignals).
			var m map[string]float64
			if err := json.Unmarshal(scores, &m); err != nil {
				return nil, fmt.Errorf("baseline: %s line %d: scores: %w", path, line, err)
			}
			if conf, ent, ok := processors.ScoreSignals(m); ok {
				s.Add(processors.ConfidenceFeature, schemas.Value{Kind: schemas.Number, Num: conf})
				s.Add(processors.EntropyFeature, schemas.Value{Kind: schemas.Number, Num: ent})
			}
		}
		s.Events++
		for name, raw := range obj {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, fmt.Errorf("baseline: %s line %d: %s: %w", path, line, name, err)
			}
			if name == "prediction" {
				name = processors.PredictionFeature
			}
			switch x := v.(type) {
			case nil:
				s.Add(name, schemas.Value{})
			case float64:
				s.Add(name, schemas.Value{Kind: schemas.Number, Num: x})
			case string:
				s.Add(name, schemas.Value{Kind: schemas.String, Str: x})
			case bool:
				s.Add(name, cell(strconv.FormatBool(x)))
			default:
				return nil, fmt.Errorf("baseline: %s line %d: feature %s: nested values are not supported", path, line, name)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("baseline: %s: %w", path, err)
	}
	if s.Events == 0 {
		return nil, fmt.Errorf("baseline: %s has no rows", path)
	}
	return s, nil
}
