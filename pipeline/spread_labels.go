package pipeline

import (
	"context"
	"slices"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/storage"
)

// Settling labels in a spread group (docs/concept-drift.md). One member's label
// watermark is the least of its label partitions' marks (labelPart.mark); in a spread
// group each member reads some of the label partitions, so each writes its partitions'
// marks (read_progress rows of the label topic, model "") after the labels they
// cover, and each model's judge settles its windows by the least mark of every label
// partition, once every label partition has one (its reader got a label from it or found
// it read to its end), and only windows it has judged. The join itself is ClickHouse's, as for one member,
// over every label partition's records: the same windows settle with the same labels.

// pollEvery is how often a spread member asks what other members know: references,
// labelled models and label partitions' stamps, where its label partitions end.
const pollEvery = 5 * time.Second

// shareLabelProgress adds to batch the marks of the label partitions this member reads.
// A partition whose mark is so old that the wall clock could move it is asked where it
// ends (at most every pollEvery): read to its end, its mark moves with the clock, as one
// member's watermark does.
func (r *Runner) shareLabelProgress(ctx context.Context, owner partitionOwner, batch *storage.Batch) error {
	mine, _, err := owner.Owned(ctx, r.set.LabelTopic)
	if err != nil {
		r.log.Warn("partitions of the label topic not known; label progress not written", "err", err)
		return nil
	}
	now := r.now()
	r.lab.know(r.set.LabelTopic, mine, now)
	r.warnSilentLabels(now)
	var ask []consumers.TopicPartition
	for _, p := range mine {
		tp := consumers.TopicPartition{Topic: r.set.LabelTopic, Partition: p}
		if lp, ok := r.lab.progress[tp]; ok && lp.mark(time.Time{}).Before(now.Add(-labelIdle-labelSkew)) {
			ask = append(ask, tp)
		}
	}
	if len(ask) > 0 && now.Sub(r.spread.caughtAsked) >= pollEvery {
		r.spread.caughtAsked = now
		if err := r.refreshCaught(ctx, now, ask); err != nil {
			return err
		}
	}
	epoch := time.UnixMilli(0).UTC()
	for _, p := range mine {
		mark := r.lab.progress[consumers.TopicPartition{Topic: r.set.LabelTopic, Partition: p}].mark(time.Time{})
		if mark.IsZero() {
			continue // nothing delivered and not found read to its end: no row, the judges wait for it
		}
		mark = maxTime(epoch, mark.UTC())
		row := storage.PartitionProgress{TP: processors.TopicPartition{Topic: r.set.LabelTopic, Partition: p}, Through: mark, EventMax: epoch}
		k := progressKey{tp: row.TP}
		if last, ok := r.spread.written[k]; ok && !mark.After(last.Through) {
			continue
		}
		r.spread.written[k] = row
		batch.Progress = append(batch.Progress, row)
	}
	return nil
}

// spreadLabels is the settle loop's view for a spread member: the models it judges that
// have labels, the label watermark from every label partition's mark, and its judged
// windows only. It learns the labelled models and the partitions' stamps (the scan's
// lower bound) from ClickHouse, at most every pollEvery.
func (r *Runner) spreadLabels(ctx context.Context) (settleView, bool, error) {
	owner, ok := r.src.(partitionOwner)
	if !ok || r.spread.stale {
		return settleView{}, false, nil // stale: judgeOwned restores the judging state first
	}
	mine, total, err := owner.Owned(ctx, r.set.PredictionTopic)
	if err != nil || len(mine) == 0 {
		return settleView{}, false, nil
	}
	_, labelTotal, err := owner.Owned(ctx, r.set.LabelTopic)
	if err != nil || labelTotal == 0 {
		r.log.Warn("partitions of the label topic not known; settling waits", "err", err)
		return settleView{}, false, nil
	}
	l := r.lab
	if now := r.now(); now.Sub(r.spread.labelsPolled) >= pollEvery {
		r.spread.labelsPolled = now
		stamps, models, err := r.store.LoadLabelProgress(ctx)
		if err != nil {
			r.log.Warn("label progress not read; settling goes on with what is known", "err", err)
		}
		for _, p := range stamps {
			tp := consumers.TopicPartition{Topic: p.Topic, Partition: p.Partition}
			if lp := l.progress[tp]; p.Topic == r.set.LabelTopic && p.Latest.After(lp.stamp) {
				lp.stamp = p.Latest
				l.progress[tp] = lp
			}
		}
		for _, m := range models {
			if !l.models[m] {
				l.models[m], l.dueKnown = true, false
			}
		}
	}
	own := map[int]bool{}
	for _, p := range mine {
		own[p] = true
	}
	var v settleView
	for m := range l.models {
		if own[ownerPartition(m, total)] {
			v.models = append(v.models, m)
		}
	}
	if len(v.models) == 0 {
		return settleView{}, false, nil
	}
	progress := r.spread.progress
	if progress == nil {
		if err := retry.Do(ctx, r.set.policy(), "loading partition progress", storage.ClassifyRead, r.attempt, func(ctx context.Context) error {
			var err error
			progress, err = r.store.LoadPartitionProgress(ctx)
			return err
		}); err != nil {
			return settleView{}, false, err
		}
	}
	marks := map[int]time.Time{}
	for _, p := range progress {
		if p.Model == "" && p.TP.Topic == r.set.LabelTopic {
			marks[p.TP.Partition] = p.Through
		}
	}
	for p := 0; p < labelTotal; p++ {
		mark, ok := marks[p]
		if !ok {
			return settleView{}, false, nil // no label from it yet and not found read to its end: it may hold any window's labels
		}
		v.partitions = append(v.partitions, storage.LabelPartition{Topic: r.set.LabelTopic, Partition: p})
		if mark.UnixMilli() <= 0 {
			continue // written by a driftd before 2026-12-05 for a partition with no label yet: it holds nothing back
		}
		if v.wm.IsZero() || mark.Before(v.wm) {
			v.wm = mark
		}
	}
	if v.wm.IsZero() {
		return settleView{}, false, nil
	}
	v.judged = func(model string, end time.Time) bool { return !end.After(r.spread.judged[model]) }
	v.owned = func(ctx context.Context) bool {
		now, _, err := owner.Owned(ctx, r.set.PredictionTopic)
		return err == nil && slices.Equal(now, mine)
	}
	return v, true, nil
}

// dropJudged leaves what this member judged and did not write to the new judge of its
// models (its partitions moved): it judges again only after restoring what was judged.
func (r *Runner) dropJudged(why string) {
	r.log.Info(why)
	r.unwritten = nil
	r.spread.stale = true
}
