package agentconfig

import (
	"errors"
	"strconv"
	"time"
)

// ParseTimeDurationString reads a polling interval as the agent's
// util.ParseTimeDurationString does outside development mode: a positive
// integer and one unit of ms, s, m, h, d or w. Seconds under 60 and
// milliseconds under 1000 are refused (the agent's own, uneven, floor).
func ParseTimeDurationString(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, errors.New("invalid format")
	}
	split := len(s)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] >= '0' && s[i] <= '9' {
			split = i + 1
			break
		}
	}
	if split == len(s) || split == 0 {
		return 0, errors.New("invalid format: must contain both number and unit")
	}
	n, err := strconv.Atoi(s[:split])
	if err != nil {
		return 0, errors.New("invalid format: the number is not an integer")
	}
	if n <= 0 {
		return 0, errors.New("polling interval must be greater than 0")
	}
	unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}
	u, ok := unit[s[split:]]
	switch {
	case !ok:
		return 0, errors.New("invalid time unit: want ms, s, m, h, d or w")
	case u == time.Second && n < 60:
		return 0, errors.New("polling interval must be at least 60 seconds")
	case u == time.Millisecond && n < 1000:
		return 0, errors.New("polling interval must be at least 1000 milliseconds")
	}
	if time.Duration(n) > (1<<63-1)/u {
		return 0, errors.New("polling interval is too long")
	}
	return time.Duration(n) * u, nil
}
