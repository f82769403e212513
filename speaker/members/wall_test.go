package members

import (
	"time"

	"golang.org/x/sys/unix"
)

// nowWall reads the machine's monotonic clock, which a synctest bubble does not fake.
func nowWall() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

func sinceWall(w time.Duration) time.Duration { return nowWall() - w }
