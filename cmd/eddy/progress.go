package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a single live status line ("\r…") on a terminal while a
// long produce or consume runs. It draws nothing when w is not a terminal.
// The goroutine it starts is stopped and waited for by stop.
type progress struct {
	w     io.Writer
	verb  string
	count atomic.Int64
	bytes atomic.Int64
	start time.Time

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// startProgress starts drawing on w if w is a terminal; verb names the
// activity ("produced", "consumed").
func startProgress(w io.Writer, verb string) *progress {
	p := &progress{w: w, verb: verb, start: time.Now(), done: make(chan struct{})}
	if !isTerminal(w) {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		var lastN int64
		last := p.start
		for {
			select {
			case <-p.done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-t.C:
				n := p.count.Load()
				if now.Sub(p.start) < time.Second {
					continue // short runs stay quiet
				}
				rate := float64(n-lastN) / now.Sub(last).Seconds()
				fmt.Fprintf(w, "\r\033[K%s %d records, %.1f MB, %.0f rec/s", p.verb, n, float64(p.bytes.Load())/1e6, rate)
				lastN, last = n, now
			}
		}
	}()
	return p
}

// add records n more records of b bytes in total.
func (p *progress) add(n, b int64) {
	p.count.Add(n)
	p.bytes.Add(b)
}

// stop clears the status line and waits for the drawing goroutine; it is
// safe to call more than once.
func (p *progress) stop() {
	p.once.Do(func() { close(p.done) })
	p.wg.Wait()
}
