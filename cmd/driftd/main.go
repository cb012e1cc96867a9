// Command driftd monitors machine-learning models in production from the events they
// send to Kafka: it windows predictions, compares them with reference profiles, stores
// every window in ClickHouse and publishes drift and health alerts back to Kafka.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/driftd/driftd/chdb"
	"github.com/driftd/driftd/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signalContext()
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "driftd:", err)
		os.Exit(1)
	}
}

// signalContext ends on Ctrl-C or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "driftd",
		Short:         "Watch ML models in production: drift, latency, errors, alerts",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringP("config", "c", "", "path to driftd.yaml (defaults apply without one; DRIFTD_* variables override)")
	root.AddCommand(runCmd(), devCmd(), simulateCmd(), migrateCmd(), baselineCmd(), reportCmd(), fetchEngineCmd(), detectBenchCmd(), benchCmd(), versionCmd())
	return root
}

func loadConfig(cmd *cobra.Command) (config.Config, *slog.Logger, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path, config.Environ())
	if err != nil {
		return cfg, nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	return cfg, log, nil
}

func runCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Consume events, write window results to ClickHouse and publish alerts",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			err = run(cmd.Context(), cfg, log, hooks{})
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
}

func migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade driftd's ClickHouse tables",
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			done, err := st.Migrate(cmd.Context(), cfg.ClickHouse.RetentionDays)
			for _, m := range done {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", m)
			}
			if err == nil && len(done) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "up to date")
			}
			return err
		},
	}
}

func fetchEngineCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "fetch-engine",
		Short: "Fetch the embedded ClickHouse engine (libchdb.so, pinned and verified) and print its path",
		RunE: func(cmd *cobra.Command, _ []string) error {
			lib, err := chdb.Fetch(cmd.Context(), dir, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), lib)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", chdb.DefaultCacheDir(), "cache folder")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "driftd %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
