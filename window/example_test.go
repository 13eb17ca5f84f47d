package window_test

import (
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/window"
)

func ExampleTimeWindows_WindowsFor() {
	hop := window.Hopping(10*time.Millisecond, 5*time.Millisecond)
	if err := hop.Err(); err != nil {
		panic(err)
	}
	for _, ts := range []int64{3, 5, 12} {
		fmt.Println(ts, hop.WindowsFor(ts))
	}
	// Output:
	// 3 [[0,10]]
	// 5 [[0,10] [5,15]]
	// 12 [[5,15] [10,20]]
}

func ExampleTimeWindows_Closed() {
	w := window.Tumbling(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
	win := window.Window{Start: 0, End: 10}
	for _, streamTime := range []int64{14, 15} {
		fmt.Printf("stream time %d: closed=%v\n", streamTime, w.Closed(win, streamTime))
	}
	// Output:
	// stream time 14: closed=false
	// stream time 15: closed=true
}

func ExampleSessionWindows_Merge() {
	s := window.Session(50 * time.Millisecond)
	a, b := window.Window{Start: 0, End: 10}, window.Window{Start: 100, End: 120}
	fmt.Println(s.Mergeable(a, 60), s.Mergeable(b, 60))
	fmt.Println(s.Merge(60, a, b))
	// Output:
	// true true
	// [0,120]
}

func ExampleSlidingWindows() {
	s := window.Sliding(10 * time.Millisecond)
	fmt.Println(s.LeftWindow(15), s.RightWindow(15))
	// Output: [5,15] [16,26]
}

func ExampleJoinWindows_Matches() {
	j := window.JoinWindowsOf(100 * time.Millisecond).Before(50 * time.Millisecond)
	fmt.Println(j.Matches(1000, 950), j.Matches(1000, 949), j.Matches(1000, 1100))
	from, to := j.LeftRange(1000)
	fmt.Println(from, to)
	// Output:
	// true false true
	// 950 1100
}

func ExampleTimeWindowedSerde() {
	s := window.TimeWindowedSerde(serde.String(), time.Hour)
	b, _ := s.Serialize("counts", window.Windowed[string]{
		Key:    "user-1",
		Window: window.Window{Start: 3600000, End: 7200000},
	})
	fmt.Printf("% x\n", b)
	w, _ := s.Deserialize("counts", b)
	fmt.Println(w.Key, w.Window)
	// Output:
	// 75 73 65 72 2d 31 00 00 00 00 00 36 ee 80
	// user-1 [3600000,7200000]
}
