package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
)

func simulateCmd() *cobra.Command {
	var s simOptions
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Produce simulated prediction, label and pipeline events to a Kafka cluster",
		Long: `simulate produces deterministic traffic (the same --seed gives the same events) for
several models, each showing one production failure, on a simulated clock (--speed).
It writes to the brokers and topics of the configuration, so it works against
docker compose or a real cluster as well as against "driftd dev".`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ko, err := kafkaOptions(cfg)
			if err != nil {
				return err
			}
			err = simulateInto(cmd.Context(), s, time.Now().UTC().Truncate(time.Minute), ko, cfg.Kafka.Topics, cfg.Kafka.SchemaRegistry.BundledIDs["prediction"], nil)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	addSimFlags(cmd.Flags(), &s)
	return cmd
}
