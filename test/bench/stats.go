package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// sample is a set of measured durations.
type sample []time.Duration

// pct is the p-th percentile (nearest rank); 0 for an empty sample.
func (s sample) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(sample(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	i := int(math.Ceil(p/100*float64(len(c)))) - 1
	if i < 0 {
		i = 0
	}
	return c[i]
}

func (s sample) min() time.Duration { return s.pct(0) }
func (s sample) max() time.Duration { return s.pct(100) }

// ms formats a duration in milliseconds, or seconds from 10 s on.
func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

// latency is "p50 X, p99 Y (min–max, n)".
func (s sample) latency() string {
	if len(s) == 0 {
		return "no data"
	}
	return fmt.Sprintf("p50 %s, p99 %s (min %s, max %s; n=%d)", ms(s.pct(50)), ms(s.pct(99)), ms(s.min()), ms(s.max()), len(s))
}

// median is "median X (min–max, n)".
func (s sample) median() string {
	if len(s) == 0 {
		return "no data"
	}
	return fmt.Sprintf("%s (%s–%s, n=%d)", ms(s.pct(50)), ms(s.min()), ms(s.max()), len(s))
}

func ratio(a, b time.Duration) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f", float64(a)/float64(b))
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
