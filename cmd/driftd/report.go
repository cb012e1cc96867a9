package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftd/driftd/report"
)

func reportCmd() *cobra.Command {
	var model, from, to, out, feature string
	cmd := &cobra.Command{
		Use:   "report --model M [--from T1] [--to T2] [--out file.html]",
		Short: "Write one model's traffic, drift heat map and alert timeline as a self-contained HTML file",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if model == "" {
				return errors.New("report: --model is required")
			}
			now := time.Now().UTC()
			end, err := reportTime("--to", to, now)
			if err != nil {
				return err
			}
			start, err := reportTime("--from", from, end.Add(-24*time.Hour))
			if err != nil {
				return err
			}
			if !start.Before(end) {
				return fmt.Errorf("report: --from %s is not before --to %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
			}
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			st, closeEngine, err := openStore(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer closeEngine()
			defer st.Close()
			d, err := report.Load(cmd.Context(), st.Conn(), st.Database(), report.Selection{Model: model, Feature: feature, From: start, To: end})
			if err != nil {
				return err
			}
			d.Generated = now
			var w io.Writer = cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				defer f.Close()
				w = f
			}
			if err := report.Render(w, d, false); err != nil {
				return fmt.Errorf("report: %w", err)
			}
			if out != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d windows of %s, %d alert transitions\n", out, len(d.Traffic), model, len(d.Alerts))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "the model")
	cmd.Flags().StringVar(&from, "from", "", "start of the period (RFC 3339; default: 24 hours before --to)")
	cmd.Flags().StringVar(&to, "to", "", "end of the period (RFC 3339; default: now)")
	cmd.Flags().StringVar(&out, "out", "", "HTML file to write (default: standard output)")
	cmd.Flags().StringVar(&feature, "feature", "", "the feature whose distribution is drawn against the reference (default: the most drifted)")
	return cmd
}

// reportTime parses a report flag's RFC 3339 time (def when empty).
func reportTime(flag, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, fmt.Errorf("report: %s %q is not an RFC 3339 time (2026-03-04T10:00:00Z)", flag, v)
	}
	return t.UTC(), nil
}
