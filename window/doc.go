// Package window defines windows and their time arithmetic with Kafka
// Streams' semantics: tumbling and hopping time windows, sliding windows,
// session windows and join windows, grace periods, and the windowed-key
// serdes in Kafka Streams' byte layout.
//
// All times are epoch milliseconds (int64); durations given to constructors
// are time.Duration values truncated to whole milliseconds. Nothing here
// holds state: the aggregation and join processors use these definitions
// together with the window and session stores.
//
// # Building definitions
//
// Constructors never panic. A definition built with invalid arguments (a
// zero size, an advance larger than the size, a negative grace, ...)
// remembers the first error; Err returns it (wrapping [ErrInvalid]) and the
// computing methods return empty results. Check Err when the topology is
// built.
//
// Grace defaults to zero, as Kafka 3's ofSizeWithNoGrace and friends; eddy
// has no equivalent of the deprecated 24-hour default. WithGrace sets it.
//
// # Time windows
//
// [Tumbling] and [Hopping] windows are half-open, [start, start+size), with
// starts on multiples of the advance counted from epoch 0. A record at ts
// belongs to every window returned by [TimeWindows.WindowsFor]. With a
// 10 ms size and 5 ms advance:
//
//	record ts | hopping(10, 5) windows | tumbling(10) window
//	----------+------------------------+--------------------
//	        0 | [0,10)                 | [0,10)
//	        3 | [0,10)                 | [0,10)
//	        5 | [0,10) [5,15)          | [0,10)
//	        9 | [0,10) [5,15)          | [0,10)
//	       10 | [5,15) [10,20)         | [10,20)
//	       12 | [5,15) [10,20)         | [10,20)
//
// A window is closed when end <= streamTime - grace ([TimeWindows.Closed]);
// a record is late, and dropped, when all its windows are closed
// ([TimeWindows.Late]). With size 10 and grace 5, window [0,10) still
// accepts a record at stream time 14 and is closed at 15.
//
// # Sliding windows
//
// [Sliding] windows have a fixed size d and include both bounds,
// [start, start+d]. They follow the records: a record at t has a left
// window [t-d, t] and, when a later record of the key lies within d, a
// right window [t+1, t+1+d]. Two records share a window exactly when their
// timestamps differ by at most d. A record is dropped when
// t + 1 + d <= streamTime - grace; a window, which includes its end, is
// closed when end < streamTime - grace. Records at 0 <= t < d share the early window
// [0, d]. See [SlidingWindows] for the helpers the aggregation uses.
//
// # Session windows
//
// [Session] windows are per key and include both bounds; a session spans
// its first to its last record. A record at t merges every session with
// end >= t-gap and start <= t+gap. With a 50 ms gap:
//
//	records (ts)   | sessions
//	---------------+-------------------------------
//	0              | [0,0]
//	0, 30          | [0,30]
//	0, 30, 80      | [0,80]   (80 - 30 = 50: merges)
//	0, 30, 81      | [0,30] [81,81]
//	0, 30, 130     | [0,30] [130,130]
//	0, 30, 130, 80 | [0,130]  (80 bridges both)
//
// A session is closed when end < streamTime - grace - gap
// ([SessionWindows.Closed]).
//
// # Join windows
//
// [JoinWindowsOf](d) joins a left record at tL with a right record at tR
// when |tL - tR| <= d; [JoinWindows.Before] and [JoinWindows.After] make it
// asymmetric: tL - before <= tR <= tL + after, both ends inclusive.
// [JoinWindows.LeftRange] and [JoinWindows.RightRange] give the store
// ranges to search. A left/outer join emits an unmatched left record once
// t + after + grace < streamTime, and an outer join an unmatched right
// record once t + before + grace < streamTime.
//
// # Windowed keys on the wire
//
// [Windowed] pairs a key with its window. [TimeWindowedSerde] writes the
// key bytes followed by the 8-byte big-endian window start (the end is
// recomputed from the window size when reading); [SessionWindowedSerde]
// writes the key bytes, the 8-byte end, then the 8-byte start. These are
// Kafka Streams' layouts, so Kafka Streams consumers read eddy's windowed
// output topics and vice versa. One difference: Kafka's deserializers read
// an empty array as null, while eddy, following package serde, reports it
// as too short ([serde.ErrBadLength]); nil input is null ([serde.ErrNull]).
package window
