package runtime

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/window"
)

// wqWindow is the window size of the windowed topology below.
const wqWindow = 10_000

// windowCounter counts records per key in tumbling windows of wqWindow
// ms in the window store "wins" and keeps, in the session store "sess",
// a session [ts, ts+5] per record holding its value: a Processor API
// topology, so the interactive queries are tested without the DSL's
// windowed operators.
type windowCounter struct {
	wins, sess *stream.StoreHandle
}

func (p *windowCounter) Init(ctx stream.ProcessorContext[string, string]) (err error) {
	if p.wins, err = ctx.Store("wins"); err != nil {
		return err
	}
	p.sess, err = ctx.Store("sess")
	return err
}

func (p *windowCounter) Process(r stream.Record[string, string]) error {
	start := r.Timestamp - r.Timestamp%wqWindow
	var n int64
	v, _, ok, err := p.wins.FetchWindow([]byte(r.Key), start)
	if err != nil {
		return err
	}
	if ok {
		if n, err = serde.Int64().Deserialize("", v); err != nil {
			return err
		}
	}
	nb, _ := serde.Int64().Serialize("", n+1)
	if err := p.wins.PutWindow([]byte(r.Key), start, nb, r.Timestamp); err != nil {
		return err
	}
	return p.sess.PutSession([]byte(r.Key), r.Timestamp, r.Timestamp+5, []byte(r.Value), r.Timestamp)
}

func (p *windowCounter) Close() error { return nil }

func windowedTopology(t *testing.T, in string) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "wins", Kind: stream.WindowKind, Retention: 24 * time.Hour})
	b.AddStateStore(stream.StoreSpec{Name: "sess", Kind: stream.SessionKind, Retention: 24 * time.Hour})
	b.AddStateStore(stream.StoreSpec{Name: "plain"})
	s := stream.Stream(b, stream.With(serde.String(), serde.String()), in)
	stream.Process(s, func() stream.Processor[string, string, string, string] { return &windowCounter{} }, "wins", "sess", "plain")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// wqInput is the input of the window query tests, with what the stores
// must hold afterwards: counts per key and window start, and sessions
// per key as "[start,end]=value".
func wqInput() (recs []e2eRec, windows map[string]map[int64]int64, sessions map[string][]string) {
	base := e2eBase - e2eBase%wqWindow
	windows, sessions = map[string]map[int64]int64{}, map[string][]string{}
	for i := range 40 {
		k := fmt.Sprintf("user%d", i%8)
		ts := int64(i/8)*4_000 + int64(i%8) // 5 records per key over 16 s: two windows
		v := fmt.Sprintf("v%d", i)
		recs = append(recs, str("in", k, v, base-e2eBase+ts))
		start := base + ts - ts%wqWindow
		if windows[k] == nil {
			windows[k] = map[int64]int64{}
		}
		windows[k][start]++
		sessions[k] = append(sessions[k], fmt.Sprintf("[%d,%d]=%s", base+ts, base+ts+5, v))
	}
	return recs, windows, sessions
}

// wqWorker is one worker of the window query tests.
type wqWorker struct {
	srv  *httptest.Server
	app  *running
	addr string
}

// startQueryWorkers starts n workers of top with ApplicationServers and
// query handlers, and waits until both hold tasks of store.
func startQueryWorkers(t *testing.T, brokers []string, appID string, top *stream.Topology, n int, store string) []wqWorker {
	t.Helper()
	ws := make([]wqWorker, n)
	for i := range ws {
		lh := &lateHandler{}
		srv := httptest.NewServer(lh)
		t.Cleanup(srv.Close)
		addr := strings.TrimPrefix(srv.URL, "http://")
		cfg := testConfig(t, appID, brokers)
		cfg.ApplicationServer = addr
		r := start(t, top, cfg)
		h := r.QueryHandler()
		lh.h.Store(&h)
		ws[i] = wqWorker{srv: srv, app: r, addr: addr}
	}
	for _, w := range ws {
		w.app.waitRunning(t)
	}
	eventually(t, 20*time.Second, "every worker holds tasks of "+store, func() bool {
		hosts, complete, err := ws[0].app.StoreHosts(store)
		return err == nil && complete && len(hosts) == n
	})
	return ws
}

// queryWindowsJSON is a /windows or /sessions answer.
type queryWindowsJSON struct {
	Store     string
	Scope     string
	Entries   []QueryWindow
	Truncated bool
}

func windowCounts(t *testing.T, es []QueryWindow) map[int64]int64 {
	t.Helper()
	m := map[int64]int64{}
	for _, e := range es {
		m[e.Start] = count(t, e.QueryEntry)
	}
	return m
}

func TestWindowQueries(t *testing.T) {
	brokers := backends[0].start(t) // eddy
	createTopics(t, brokers, 4, "wq-in")
	top := windowedTopology(t, "wq-in")
	ws := startQueryWorkers(t, brokers, "window-queries", top, 2, "wins")

	recs, wantWins, wantSess := wqInput()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produceRecs(t, cl, "wq-", recs)
	keys := slices.Sorted(maps.Keys(wantWins))

	// owner returns the worker owning key.
	owner := func(key string) wqWorker {
		t.Helper()
		h, err := ws[0].app.KeyOwner("wins", []byte(key))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if w.addr == h.String() {
				return w
			}
		}
		t.Fatalf("owner %s of %s is no worker", h, key)
		return wqWorker{}
	}

	// Go API: the owner's copy has the key's windows (once flushed); the
	// other worker has none of them.
	for _, k := range keys {
		own := owner(k)
		eventually(t, 20*time.Second, "windows of "+k, func() bool {
			got, err := QueryWindows(own.app.App, "wins", k, 0, 1<<62, serde.String(), serde.Int64())
			if err != nil {
				t.Fatal(err)
			}
			m := map[int64]int64{}
			for i, w := range got {
				if w.Key != k || (i > 0 && got[i-1].Start >= w.Start) {
					t.Fatalf("QueryWindows(%s) = %+v: wrong key or order", k, got)
				}
				m[w.Start] = w.Value
			}
			return maps.Equal(m, wantWins[k])
		})
		for _, w := range ws {
			if w.addr == own.addr {
				continue
			}
			if got, err := QueryWindows(w.app.App, "wins", k, 0, 1<<62, serde.String(), serde.Int64()); err != nil || len(got) != 0 {
				t.Errorf("non-owner %s has windows of %s: %v, %v", w.addr, k, got, err)
			}
		}
		// A range holding only the first window.
		first := slices.Min(slices.Collect(maps.Keys(wantWins[k])))
		got, err := QueryWindows(own.app.App, "wins", k, first, first+wqWindow-1, serde.String(), serde.Int64())
		if err != nil || len(got) != 1 || got[0].Start != first || got[0].Value != wantWins[k][first] {
			t.Errorf("QueryWindows(%s, [%d, %d]) = %+v, %v", k, first, first+wqWindow-1, got, err)
		}
		// Sessions.
		eventually(t, 20*time.Second, "sessions of "+k, func() bool {
			ss, err := QuerySessions(own.app.App, "sess", k, serde.String(), serde.String())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range ss {
				got = append(got, fmt.Sprintf("[%d,%d]=%s", s.Start, s.End, s.Value))
			}
			return slices.Equal(got, wantSess[k])
		})
	}
	// Every worker's windows together are all windows, each held once.
	all := map[string]int64{}
	for _, w := range ws {
		got, err := QueryAllWindows(w.app.App, "wins", 0, 1<<62, serde.String(), serde.Int64())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			id := fmt.Sprintf("%s@%d", e.Key, e.Start)
			if _, dup := all[id]; dup {
				t.Errorf("window %s held by two workers", id)
			}
			all[id] = e.Value
		}
	}
	wantAll := map[string]int64{}
	for k, m := range wantWins {
		for s, n := range m {
			wantAll[fmt.Sprintf("%s@%d", k, s)] = n
		}
	}
	if !maps.Equal(all, wantAll) {
		t.Errorf("all windows:%s", diffMaps(wantAll, all))
	}

	// Kinds and names.
	a := ws[0].app.App
	if _, _, err := Query(a, "wins", "user0", serde.String(), serde.Int64()); !errors.Is(err, ErrWrongStoreKind) {
		t.Errorf("Query on a window store: %v", err)
	}
	if _, err := QueryWindows(a, "sess", "user0", 0, 1, serde.String(), serde.Int64()); !errors.Is(err, ErrWrongStoreKind) {
		t.Errorf("QueryWindows on a session store: %v", err)
	}
	if _, err := QuerySessions(a, "plain", "user0", serde.String(), serde.String()); !errors.Is(err, ErrWrongStoreKind) {
		t.Errorf("QuerySessions on a key-value store: %v", err)
	}
	if _, err := QueryWindows(a, "nope", "user0", 0, 1, serde.String(), serde.Int64()); !errors.Is(err, ErrUnknownStore) {
		t.Errorf("unknown store: %v", err)
	}
	if r, _ := a.Store("wins"); r.Kind() != stream.WindowKind || r.Name() != "wins" {
		t.Errorf("reader of wins: %v %s", r.Kind(), r.Name())
	}
	r, _ := a.Store("wins")
	for _, err := range r.All() {
		if !errors.Is(err, ErrWrongStoreKind) {
			t.Errorf("All on a window store: %v", err)
		}
	}

	// HTTP: a key's windows from either worker, forwarded to the owner.
	local, forwarded := 0, 0
	for _, w := range ws {
		for _, k := range keys {
			var ans queryWindowsJSON
			u := fmt.Sprintf("%s/stores/wins/windows?key=%s&from=0&to=%d", w.srv.URL, url.QueryEscape(k), int64(1)<<62)
			if code, _ := httpGet(t, u, false, &ans); code != http.StatusOK {
				t.Fatalf("GET %s: %d", u, code)
			}
			if got := windowCounts(t, ans.Entries); !maps.Equal(got, wantWins[k]) {
				t.Errorf("%s from %s: %v, want %v", k, w.addr, got, wantWins[k])
			}
			own := owner(k)
			for _, e := range ans.Entries {
				if e.Host != own.addr || e.Key == nil || *e.Key != k || e.End != nil || e.Timestamp < e.Start || e.Timestamp >= e.Start+wqWindow {
					t.Errorf("%s from %s: entry %+v (owner %s)", k, w.addr, e, own.addr)
				}
			}
			if ans.Scope != "key" || ans.Store != "wins" {
				t.Errorf("answer %+v", ans)
			}
			if own.addr == w.addr {
				local++
			} else {
				forwarded++
			}
		}
	}
	if local == 0 || forwarded == 0 {
		t.Errorf("local answers %d, forwarded %d: want both", local, forwarded)
	}

	// Times as RFC 3339, a size giving ends, a binary key.
	k := keys[0]
	first := slices.Min(slices.Collect(maps.Keys(wantWins[k])))
	from := time.UnixMilli(first).UTC().Format(time.RFC3339Nano)
	to := time.UnixMilli(first + wqWindow - 1).UTC().Format(time.RFC3339Nano)
	var ans queryWindowsJSON
	u := fmt.Sprintf("%s/stores/wins/windows?key_base64=%s&from=%s&to=%s&size=10s", ws[1].srv.URL,
		url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(k))), url.QueryEscape(from), url.QueryEscape(to))
	if code, _ := httpGet(t, u, false, &ans); code != http.StatusOK || len(ans.Entries) != 1 {
		t.Fatalf("GET %s: %d %+v", u, code, ans)
	}
	if e := ans.Entries[0]; e.Start != first || e.End == nil || *e.End != first+wqWindow || count(t, e.QueryEntry) != wantWins[k][first] {
		t.Errorf("first window of %s with size: %+v", k, e)
	}
	// A key without windows: an empty list.
	if code, _ := httpGet(t, ws[0].srv.URL+"/stores/wins/windows?key=nobody", false, &ans); code != http.StatusOK || len(ans.Entries) != 0 {
		t.Errorf("windows of an unknown key: %d %+v", code, ans)
	}

	// Every window of every worker, sorted by key then start; and this
	// worker's only.
	for _, w := range ws {
		var all queryWindowsJSON
		if code, _ := httpGet(t, w.srv.URL+"/stores/wins/windows?scope=all", false, &all); code != http.StatusOK {
			t.Fatalf("scope=all: %d", code)
		}
		got := map[string]int64{}
		for i, e := range all.Entries {
			got[fmt.Sprintf("%s@%d", *e.Key, e.Start)] = count(t, e.QueryEntry)
			if i > 0 && compareWindows(all.Entries[i-1], e) >= 0 {
				t.Errorf("scope=all not sorted at %d", i)
			}
		}
		if !maps.Equal(got, wantAll) || all.Truncated {
			t.Errorf("scope=all windows from %s:%s", w.addr, diffMaps(wantAll, got))
		}
		var mine queryWindowsJSON
		if code, _ := httpGet(t, w.srv.URL+"/stores/wins/windows", false, &mine); code != http.StatusOK {
			t.Fatalf("local windows: %d", code)
		}
		for _, e := range mine.Entries {
			if e.Host != w.addr {
				t.Errorf("local window from %s", e.Host)
			}
		}
		if len(mine.Entries) == 0 || len(mine.Entries) == len(wantAll) {
			t.Errorf("%s holds %d of %d windows: want some", w.addr, len(mine.Entries), len(wantAll))
		}
		var lim queryWindowsJSON
		if code, _ := httpGet(t, w.srv.URL+"/stores/wins/windows?scope=all&limit=3", false, &lim); code != http.StatusOK || len(lim.Entries) != 3 || !lim.Truncated {
			t.Errorf("limit=3: %d %+v", code, lim)
		}
	}

	// Sessions by key (forwarded), filtered by time, and all of them.
	for _, w := range ws {
		for _, k := range keys {
			var ans queryWindowsJSON
			if code, _ := httpGet(t, w.srv.URL+"/stores/sess/sessions?key="+url.QueryEscape(k), false, &ans); code != http.StatusOK {
				t.Fatalf("sessions of %s: %d", k, code)
			}
			var got []string
			for _, e := range ans.Entries {
				if e.End == nil || e.Value == nil {
					t.Fatalf("session entry %+v", e)
				}
				got = append(got, fmt.Sprintf("[%d,%d]=%s", e.Start, *e.End, *e.Value))
			}
			if !slices.Equal(got, wantSess[k]) {
				t.Errorf("sessions of %s from %s: %v, want %v", k, w.addr, got, wantSess[k])
			}
		}
	}
	// The sessions overlapping one instant: exactly those of the first
	// record of each key ([t, t+5] for t = base + i).
	base := e2eBase - e2eBase%wqWindow
	var sall queryWindowsJSON
	if code, _ := httpGet(t, fmt.Sprintf("%s/stores/sess/sessions?scope=all&from=%d&to=%d", ws[0].srv.URL, base+5, base+5), false, &sall); code != http.StatusOK {
		t.Fatalf("sessions scope=all: %d", code)
	}
	var firsts []string
	for _, e := range sall.Entries {
		firsts = append(firsts, *e.Key+"="+*e.Value)
	}
	if want := []string{"user0=v0", "user1=v1", "user2=v2", "user3=v3", "user4=v4", "user5=v5"}; !slices.Equal(firsts, want) {
		t.Errorf("sessions overlapping base+5: %v, want %v", firsts, want)
	}

	// Errors.
	for _, c := range []struct {
		path string
		code int
	}{
		{"/stores/nope/windows?key=a", http.StatusNotFound},
		{"/stores/nope/sessions", http.StatusNotFound},
		{"/stores/sess/windows?key=a", http.StatusBadRequest},
		{"/stores/wins/sessions?key=a", http.StatusBadRequest},
		{"/stores/plain/windows", http.StatusBadRequest},
		{"/stores/wins/keys/a", http.StatusBadRequest},
		{"/stores/wins/all", http.StatusBadRequest},
		{"/stores/wins/windows?key=a&from=yesterday", http.StatusBadRequest},
		{"/stores/wins/windows?key=a&from=10&to=9", http.StatusBadRequest},
		{"/stores/wins/windows?from=2026-13-01T00:00:00Z", http.StatusBadRequest},
		{"/stores/wins/windows?key=a&size=-1", http.StatusBadRequest},
		{"/stores/wins/windows?key=a&size=soon", http.StatusBadRequest},
		{"/stores/wins/windows?key=a&key_base64=YQ==", http.StatusBadRequest},
		{"/stores/wins/windows?scope=galaxy", http.StatusBadRequest},
		{"/stores/sess/sessions?limit=0", http.StatusBadRequest},
	} {
		if code, _ := httpGet(t, ws[0].srv.URL+c.path, false, nil); code != c.code {
			t.Errorf("GET %s: %d, want %d", c.path, code, c.code)
		}
	}
	// A forwarded request for a key this worker does not own: 503, not
	// forwarded again.
	own := owner(keys[0])
	other := ws[0]
	if other.addr == own.addr {
		other = ws[1]
	}
	for _, p := range []string{"/stores/wins/windows?key=", "/stores/sess/sessions?key="} {
		code, hdr := httpGet(t, other.srv.URL+p+keys[0], true, nil)
		if code != http.StatusServiceUnavailable || hdr.Get(ForwardedHeader) != "" {
			t.Errorf("forwarded %s%s to a non-owner: %d", p, keys[0], code)
		}
	}

	// /stores tells each store's kind.
	var sa struct {
		Stores []struct{ Name, Kind string }
	}
	if code, _ := httpGet(t, ws[0].srv.URL+"/stores", false, &sa); code != http.StatusOK {
		t.Fatal(code)
	}
	kinds := map[string]string{}
	for _, s := range sa.Stores {
		kinds[s.Name] = s.Kind
	}
	if want := map[string]string{"wins": "window", "sess": "session", "plain": "key-value"}; !maps.Equal(kinds, want) {
		t.Errorf("/stores kinds %v, want %v", kinds, want)
	}
}

// Time parameters: epoch milliseconds or RFC 3339, open by default.
func TestQueryTimeParams(t *testing.T) {
	for _, c := range []struct {
		q        string
		from, to int64
		bad      bool
	}{
		{"", -1 << 63, 1<<63 - 1, false},
		{"from=5&to=7", 5, 7, false},
		{"from=-5", -5, 1<<63 - 1, false},
		{"from=1970-01-01T00:00:01Z&to=1970-01-01T00:00:01.5%2B00:00", 1000, 1500, false},
		{"to=2026-11-22T08:00:00Z", -1 << 63, time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC).UnixMilli(), false},
		{"from=8&to=7", 0, 0, true},
		{"from=1e3", 0, 0, true},
		{"to=tomorrow", 0, 0, true},
	} {
		qv, err := url.ParseQuery(c.q)
		if err != nil {
			t.Fatal(err)
		}
		from, to, err := timeRange(qv)
		if (err != nil) != c.bad || (!c.bad && (from != c.from || to != c.to)) {
			t.Errorf("%q: %d, %d, %v", c.q, from, to, err)
		}
	}
	for s, want := range map[string]int64{"10s": 10_000, "1500": 1500, "1m": 60_000, "": 0} {
		got, err := sizeParam(url.Values{"size": {s}})
		if err != nil || got != want {
			t.Errorf("size %q: %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"0", "-3", "0s", "100us", "x"} {
		if _, err := sizeParam(url.Values{"size": {s}}); err == nil {
			t.Errorf("size %q: no error", s)
		}
	}
}

// A windowed count queried by key and time range: clicks per user and
// minute, read back with QueryWindows (over HTTP: GET
// /stores/clicks-per-minute/windows?key=alice&from=...&to=...).
func ExampleQueryWindows() {
	dir, _ := os.MkdirTemp("", "eddy-example")
	defer os.RemoveAll(dir)
	bcfg := broker.DefaultConfig()
	bcfg.DataDir, bcfg.Listen, bcfg.HTTP = dir+"/broker", "127.0.0.1:0", ""
	bcfg.OffsetsTopicPartitions, bcfg.TransactionTopicPartitions = 1, 1
	srv, _ := broker.New(bcfg)
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 2, 1, nil, "clicks"); err != nil {
		panic(err)
	}

	b := stream.NewBuilder()
	clicks := stream.Stream(b, stream.With(serde.String(), serde.String()), "clicks")
	stream.CountWindowed(clicks.GroupByKey(stream.Grouped[string, string]{}).WindowedBy(window.Tumbling(time.Minute)),
		// Windows stay queryable for an hour (the default retention is the
		// window size plus its grace: only the last window or two).
		stream.Materialized[string, int64]{Name: "clicks-per-minute", Retention: time.Hour})
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	cfg := DefaultConfig("clicks", srv.Addr())
	cfg.StateDir = dir + "/state"
	cfg.CommitInterval = 100 * time.Millisecond
	app, err := New(top, cfg)
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	if err := app.WaitRunning(ctx); err != nil {
		panic(err)
	}

	hour := time.Now().Truncate(time.Hour).Add(-time.Hour)
	for _, sec := range []int{5, 30, 65, 70, 75} {
		cl.ProduceSync(ctx, &kgo.Record{Topic: "clicks", Key: []byte("alice"), Value: []byte("/home"),
			Timestamp: hour.Add(time.Duration(sec) * time.Second)})
	}
	// Windows become queryable once committed.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if time.Now().After(deadline) {
			panic("the windows never showed up")
		}
		ws, err := QueryWindows(app, "clicks-per-minute", "alice", hour.UnixMilli(), hour.Add(time.Hour).UnixMilli(),
			serde.String(), serde.Int64())
		if err != nil {
			panic(err)
		}
		if len(ws) == 2 && ws[1].Value == 3 {
			for _, w := range ws {
				fmt.Printf("minute %d: %d clicks\n", time.UnixMilli(w.Start).Sub(hour)/time.Minute, w.Value)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	fmt.Println("run:", <-done)
	// Output:
	// minute 0: 2 clicks
	// minute 1: 3 clicks
	// run: <nil>
}
