package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/retry"
)

var errDown = errors.New("down")

func always(c retry.Class) func(error) retry.Class { return func(error) retry.Class { return c } }

func TestDo(t *testing.T) {
	fast := retry.Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond}
	bounded := fast
	bounded.MaxOutage = 50 * time.Millisecond
	for _, c := range []struct {
		name      string
		policy    retry.Policy
		class     retry.Class
		failures  int // op fails this many times, then succeeds (-1: always)
		ctxAfter  time.Duration
		wantErr   error // nil: success
		wantCalls int   // 0: at least 2
	}{
		{"succeeds at once", fast, retry.Retryable, 0, 0, nil, 1},
		{"retryable passes", fast, retry.Retryable, 3, 0, nil, 4},
		{"fatal returns at once", fast, retry.Fatal, -1, 0, errDown, 1},
		{"outage gives up", bounded, retry.Retryable, -1, 0, retry.ErrOutage, 0},
		{"ctx ends", fast, retry.Retryable, -1, 30 * time.Millisecond, context.Canceled, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if c.ctxAfter > 0 {
				time.AfterFunc(c.ctxAfter, cancel)
			}
			calls, observed := 0, 0
			err := retry.Do(ctx, c.policy, "test", always(c.class), func(a retry.Attempt) {
				observed++
				if a.N != observed || a.Err == nil || a.What != "test" {
					t.Errorf("attempt %+v", a)
				}
			}, func(context.Context) error {
				calls++
				if c.failures >= 0 && calls > c.failures {
					return nil
				}
				return errDown
			})
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("Do = %v", err)
			case c.wantErr != nil && !errors.Is(err, c.wantErr):
				t.Fatalf("Do = %v, want %v", err, c.wantErr)
			case c.wantErr != nil && !errors.Is(err, errDown):
				t.Errorf("Do = %v does not carry the last error", err)
			}
			if c.wantCalls > 0 && calls != c.wantCalls || c.wantCalls == 0 && calls < 2 {
				t.Errorf("%d calls, want %d", calls, c.wantCalls)
			}
			if observed != calls-boolInt(err == nil) {
				t.Errorf("observed %d failures of %d calls", observed, calls)
			}
		})
	}
}

// An attempt that hangs is cut off at the outage bound, not left to block for ever.
func TestDoCutsOffAHangingAttempt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	err := retry.Do(ctx, retry.Policy{Initial: time.Millisecond, MaxOutage: 100 * time.Millisecond}, "hang", always(retry.Retryable), nil,
		func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, retry.ErrOutage) {
		t.Fatalf("Do = %v, want an outage", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("gave up after %v", took)
	}
}

// Waits double up to the maximum and are jittered between half and all of it.
func TestDoBacksOffWithJitter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var waits []time.Duration
	retry.Do(ctx, retry.Policy{Initial: 8 * time.Millisecond, Max: 32 * time.Millisecond}, "w", always(retry.Retryable),
		func(a retry.Attempt) { waits = append(waits, a.Wait) },
		func(context.Context) error {
			if len(waits) == 6 {
				return nil
			}
			return errDown
		})
	for i, w := range waits {
		hi := min(8*time.Millisecond<<i, 32*time.Millisecond)
		if w < hi/2 || w > hi {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, w, hi/2, hi)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Giving up means the dependency failed for the whole bound, not a moment less.
func TestDoGivesUpAtTheBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const bound = 300 * time.Millisecond
	began := time.Now()
	err := retry.Do(ctx, retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second, MaxOutage: bound}, "b", always(retry.Retryable), nil,
		func(context.Context) error { return errDown })
	if took := time.Since(began); !errors.Is(err, retry.ErrOutage) || took < bound || took > bound+time.Second {
		t.Fatalf("Do = %v after %v, want an outage after %v", err, took, bound)
	}
}

// A Streak bounds failures reported one at a time (times are given, not slept): they add
// up to an outage while each follows the last within Gap, and start over after a Reset
// or a longer silence.
func TestStreak(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := retry.Policy{Initial: time.Second, Max: 4 * time.Second, MaxOutage: time.Minute}
	type fail struct {
		at    time.Duration // since t0
		reset bool          // Reset before this failure
	}
	for _, c := range []struct {
		name     string
		class    retry.Class
		gap      time.Duration
		fails    []fail
		wantErr  error // of the last failure (nil: none)
		wantN    int   // the last failure's attempt number
		wantWait time.Duration
	}{
		{"first failure", retry.Retryable, 0, []fail{{0, false}}, nil, 1, 0},
		{"fatal at once", retry.Fatal, 0, []fail{{0, false}}, errDown, 1, 0},
		{"adds up to the bound", retry.Retryable, 10 * time.Second, []fail{{0, false}, {5 * time.Second, false}, {15 * time.Second, false}, {25 * time.Second, false}, {35 * time.Second, false}, {45 * time.Second, false}, {55 * time.Second, false}, {60 * time.Second, false}}, retry.ErrOutage, 8, 0},
		{"last wait ends at the bound", retry.Retryable, 0, []fail{{0, false}, {59500 * time.Millisecond, false}}, nil, 2, 500 * time.Millisecond},
		{"a silence longer than the gap starts over", retry.Retryable, 10 * time.Second, []fail{{0, false}, {5 * time.Second, false}, {50 * time.Second, false}, {58 * time.Second, false}}, nil, 2, 0},
		{"reset starts over", retry.Retryable, 0, []fail{{0, false}, {30 * time.Second, false}, {61 * time.Second, true}}, nil, 1, 0},
		{"no gap: only a reset starts over", retry.Retryable, 0, []fail{{0, false}, {2 * time.Minute, false}}, retry.ErrOutage, 2, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var last retry.Attempt
			s := retry.Streak{Policy: policy, What: "fetch", Classify: always(c.class), Gap: c.gap,
				Observe: func(a retry.Attempt) { last = a }}
			var wait time.Duration
			var err error
			for _, f := range c.fails {
				if f.reset {
					s.Reset()
				}
				wait, err = s.Fail(t0.Add(f.at), errDown)
			}
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("Fail = %v", err)
			case c.wantErr != nil && (!errors.Is(err, c.wantErr) || !errors.Is(err, errDown)):
				t.Fatalf("Fail = %v, want %v carrying the failure", err, c.wantErr)
			}
			if last.N != c.wantN || last.What != "fetch" || last.Wait != wait || last.Class != c.class {
				t.Errorf("observed %+v (wait %v), want attempt %d", last, wait, c.wantN)
			}
			if c.wantWait > 0 && wait != c.wantWait {
				t.Errorf("wait %v, want %v", wait, c.wantWait)
			}
			if c.wantErr == nil && c.class == retry.Retryable && c.wantWait == 0 {
				// Jittered between half and all of the doubled wait.
				hi := min(policy.Initial<<(c.wantN-1), policy.Max)
				if wait < hi/2 || wait > hi {
					t.Errorf("wait %v, want within [%v, %v]", wait, hi/2, hi)
				}
			}
			if err != nil && wait != 0 {
				t.Errorf("wait %v with an error", wait)
			}
		})
	}
}

// A Streak's zero value retries every error, without a bound.
func TestStreakZeroValue(t *testing.T) {
	var s retry.Streak
	for i := range 3 {
		if wait, err := s.Fail(time.Unix(int64(i)*3600, 0), errDown); err != nil || wait <= 0 {
			t.Fatalf("failure %d: wait %v, %v", i+1, wait, err)
		}
	}
}
