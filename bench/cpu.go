package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 on every architecture Go runs on.
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time (user + system, every thread, live or
// exited) process pid has used, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses itself, so fields count from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat: %q", stat)
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, f[11]; stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// cpuMeter measures a server's CPU over a round.
type cpuMeter struct {
	pid   int
	cpu0  time.Duration
	wall0 time.Time
}

// startCPU starts measuring pid; pid 0 (a server this run did not start)
// measures nothing.
func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid, wall0: time.Now()}
	if pid > 0 {
		m.cpu0, _ = cpuTime(pid)
	}
	return m
}

// stop returns the CPU the server used since start and the share of the
// wall time it was busy (1 = one core all the time); zeros when unknown.
func (m cpuMeter) stop() (cpu time.Duration, busy float64) {
	if m.pid <= 0 {
		return 0, 0
	}
	c, err := cpuTime(m.pid)
	if err != nil {
		return 0, 0
	}
	cpu = c - m.cpu0
	return cpu, cpu.Seconds() / time.Since(m.wall0).Seconds()
}
