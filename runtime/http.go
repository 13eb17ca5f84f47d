package runtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eddy-streams/eddy/stream"
)

// ForwardedHeader marks a query one worker forwarded to another (by
// QueryHandler): a worker never forwards such a request again, so a stale
// assignment cannot make two workers bounce a query between them.
const ForwardedHeader = "X-Eddy-Forwarded"

// Limits of the query handler.
const (
	// queryTimeout bounds a forwarded request (and each request of a
	// fan-out) to another worker.
	queryTimeout = 5 * time.Second
	// defaultQueryLimit and maxQueryLimit bound the entries of one
	// /all or /range answer (?limit=).
	defaultQueryLimit = 10000
	maxQueryLimit     = 1000000
	// maxPeerBody bounds the body read from another worker.
	maxPeerBody = 256 << 20
	// maxRequestBody bounds what is read of a request's body (queries
	// have none).
	maxRequestBody = 4 << 10
	// retryAfter is the Retry-After (seconds) of a 503 while the
	// assignment is unknown.
	retryAfter = "1"
)

// StoreHost is a worker that holds active tasks of a store, as the
// assignment metadata says: its ApplicationServer and those tasks.
type StoreHost struct {
	Host  HostInfo
	Tasks []stream.TaskID
}

// StoreHosts returns, for store, the workers (with an ApplicationServer)
// whose active tasks hold it, sorted by address, with their tasks of that
// store in order; complete reports whether every task of the store has a
// host in the metadata (false before the first assignment, or when a
// worker without ApplicationServer holds some). A global store is held in
// full by every worker: the answer is this worker alone (none without an
// ApplicationServer), complete.
func (a *App) StoreHosts(store string) (hosts []StoreHost, complete bool, err error) {
	if _, ok := a.plan.globalStore[store]; ok {
		if a.cfg.ApplicationServer == "" {
			return nil, true, nil
		}
		h, err := parseHost(a.cfg.ApplicationServer)
		if err != nil {
			return nil, false, err
		}
		return []StoreHost{{Host: h}}, true, nil
	}
	sub, ok := a.plan.storeSub[store]
	if !ok {
		return nil, false, fmt.Errorf("%w %q", ErrUnknownStore, store)
	}
	a.mu.Lock()
	n := a.taskCounts[sub]
	a.mu.Unlock()
	covered := map[int32]bool{}
	a.hostsMu.RLock()
	for host, ids := range a.hosts {
		var mine []stream.TaskID
		for _, id := range ids {
			if id.Subtopology == sub {
				mine = append(mine, id)
				covered[id.Partition] = true
			}
		}
		if len(mine) == 0 {
			continue
		}
		h, err := parseHost(host)
		if err != nil {
			continue
		}
		slices.SortFunc(mine, compareTasks)
		hosts = append(hosts, StoreHost{Host: h, Tasks: mine})
	}
	a.hostsMu.RUnlock()
	slices.SortFunc(hosts, func(x, y StoreHost) int {
		if c := strings.Compare(x.Host.Host, y.Host.Host); c != 0 {
			return c
		}
		return x.Host.Port - y.Host.Port
	})
	return hosts, n > 0 && len(covered) == int(n), nil
}

// StoreNames returns the names of the topology's stores, sorted: the
// stores of its sub-topologies (of every kind) and its global stores.
func (a *App) StoreNames() []string {
	var out []string
	for name := range a.plan.storeSub {
		out = append(out, name)
	}
	for name := range a.plan.globalStore {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// QueryHandler returns an http.Handler serving this worker's stores as
// JSON (interactive queries), for mounting at the root of a mux ("/stores"
// and "/stores/"):
//
//	GET /stores                      the stores, their kinds and which hosts hold which tasks
//	GET /stores/S/keys/KEY           the value of KEY (its serialized bytes as text)
//	GET /stores/S/keys?key_base64=B  the same, for a binary key
//	GET /stores/S/all                this worker's entries of S
//	GET /stores/S/range?from=&to=    this worker's entries with from ≤ key ≤ to
//	GET /stores/S/windows?key=K&from=T1&to=T2
//	                                 K's windows with T1 ≤ start ≤ T2 (window store)
//	GET /stores/S/windows?from=T1&to=T2
//	                                 this worker's windows of every key
//	GET /stores/S/sessions?key=K     K's sessions (session store); from= and
//	                                 to= keep those overlapping [from, to]
//	GET /stores/S/sessions           this worker's sessions of every key
//
// A key this worker does not own is forwarded to its owner's
// ApplicationServer (see KeyOwner), once: a forwarded request (header
// ForwardedHeader) for a key the receiver does not own answers 503, as
// does a key whose owner is unknown (rebalancing; with Retry-After). /all
// and /range with ?scope=all ask every host of the store and merge the
// answers, sorted by key; from_base64/to_base64 give binary bounds and
// ?limit= caps the entries (default 10000; "truncated" tells). Keys and
// values come as text when they are text ("key", "value"; see QueryEntry)
// and always as base64 ("key_base64", "value_base64"), with the host that
// answered. Unknown stores and keys
// answer 404; errors are JSON {"error": "..."}. Requests to other workers
// time out after 5 s.
//
// Window and session queries answer a list of QueryWindow entries (the
// key and value as above, with the window's start and end and the
// record timestamp). With a key (key= as text or key_base64=) they go to
// the key's owner like /keys, and an empty list means no window; without
// one they list this worker's windows, or every worker's with
// ?scope=all (sorted by key, then start), capped by ?limit=. Times are
// epoch milliseconds or RFC 3339 timestamps; without from= or to= the
// range is open on that side. A window store keeps window starts only: ?size=
// (a duration such as 5m, or milliseconds) gives the window size, and
// then each window's end. A query of the wrong kind of store (/keys of
// a window store, /windows of a key-value store, ...) answers 400.
func (a *App) QueryHandler() http.Handler {
	q := &queryServer{a: a, client: &http.Client{Timeout: queryTimeout}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stores", q.stores)
	mux.HandleFunc("GET /stores/{$}", q.stores)
	mux.HandleFunc("GET /stores/{store}/keys", q.key)
	mux.HandleFunc("GET /stores/{store}/keys/{key...}", q.key)
	mux.HandleFunc("GET /stores/{store}/all", q.entries)
	mux.HandleFunc("GET /stores/{store}/range", q.entries)
	mux.HandleFunc("GET /stores/{store}/windows", q.windows)
	mux.HandleFunc("GET /stores/{store}/sessions", q.sessions)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such query: "+r.Method+" "+r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			writeError(w, http.StatusMethodNotAllowed, "queries are GET requests")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// queryServer serves QueryHandler; client talks to the other workers.
type queryServer struct {
	a      *App
	client *http.Client
}

// QueryEntry is one key and value of a query answer: the key and the
// value as text when they are text (valid UTF-8 without control
// characters other than tab and newlines; nil otherwise: a serialized
// int64, for one) and always as base64, with the ApplicationServer of the
// worker that read it.
type QueryEntry struct {
	Key         *string `json:"key,omitempty"`
	KeyBase64   string  `json:"key_base64"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 string  `json:"value_base64"`
	Host        string  `json:"host"`
}

// asText returns b as a string when it is text (see QueryEntry), else nil.
func asText(b []byte) *string {
	if !utf8.Valid(b) {
		return nil
	}
	s := string(b)
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return nil
		}
	}
	return &s
}

// answer is the answer of a listing query (/all, /range, /windows,
// /sessions): scope is "local", "all" or, for a key's windows or
// sessions, "key".
type answer[E any] struct {
	Store     string `json:"store"`
	Scope     string `json:"scope"`
	Entries   []E    `json:"entries"`
	Truncated bool   `json:"truncated"`
}

// queryEntries is the answer of /all and /range.
type queryEntries = answer[QueryEntry]

// QueryWindow is one window or session of a /windows or /sessions
// answer: the key and value (see QueryEntry), the window's start and
// end in epoch milliseconds, and the timestamp of the record that wrote
// the value. End is the session's end (included); for a window store,
// which keeps starts only, it is start + size (excluded for time
// windows) when the query gives ?size=, and absent otherwise.
type QueryWindow struct {
	QueryEntry
	Start     int64  `json:"start"`
	End       *int64 `json:"end,omitempty"`
	Timestamp int64  `json:"timestamp"`
}

// queryStore describes a store in the answer of /stores.
type queryStore struct {
	Name     string      `json:"name"`
	Kind     string      `json:"kind"`
	Global   bool        `json:"global"`
	Complete bool        `json:"complete"`
	Hosts    []queryHost `json:"hosts"`
}

// queryHost is a host of a store in the answer of /stores.
type queryHost struct {
	Host       string   `json:"host"`
	Tasks      []string `json:"tasks"`
	Partitions []int32  `json:"partitions"`
}

func entry(key, value []byte, host string) QueryEntry {
	e := QueryEntry{
		KeyBase64:   base64.StdEncoding.EncodeToString(key),
		ValueBase64: base64.StdEncoding.EncodeToString(value),
		Host:        host,
	}
	e.Key, e.Value = asText(key), asText(value)
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// unavailable answers 503 with Retry-After.
func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", retryAfter)
	writeError(w, http.StatusServiceUnavailable, msg)
}

// self is this worker's ApplicationServer, normalized ("" without).
func (q *queryServer) self() string {
	if q.a.cfg.ApplicationServer == "" {
		return ""
	}
	h, err := parseHost(q.a.cfg.ApplicationServer)
	if err != nil {
		return q.a.cfg.ApplicationServer
	}
	return h.String()
}

// reader returns store's reader, or answers 404.
func (q *queryServer) reader(w http.ResponseWriter, r *http.Request) (*StoreReader, bool) {
	name := r.PathValue("store")
	sr, err := q.a.Store(name)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown store %q", name))
		return nil, false
	}
	return sr, true
}

// readerOf returns store's reader when it is of kind k, or answers 404
// (unknown store) or 400 (another kind).
func (q *queryServer) readerOf(w http.ResponseWriter, r *http.Request, k stream.StoreKind) (*StoreReader, bool) {
	sr, ok := q.reader(w, r)
	if !ok {
		return nil, false
	}
	if err := sr.need(k); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return sr, true
}

func (q *queryServer) stores(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Host   string       `json:"host"`
		Stores []queryStore `json:"stores"`
	}{Host: q.self(), Stores: []queryStore{}}
	for _, name := range q.a.StoreNames() {
		hosts, complete, err := q.a.StoreHosts(name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		_, global := q.a.plan.globalStore[name]
		s := queryStore{Name: name, Kind: q.a.plan.storeInfo[name].Kind.String(), Global: global, Complete: complete, Hosts: []queryHost{}}
		for _, h := range hosts {
			qh := queryHost{Host: h.Host.String(), Tasks: []string{}, Partitions: []int32{}}
			for _, id := range h.Tasks {
				qh.Tasks = append(qh.Tasks, id.String())
				qh.Partitions = append(qh.Partitions, id.Partition)
			}
			s.Hosts = append(s.Hosts, qh)
		}
		out.Stores = append(out.Stores, s)
	}
	writeJSON(w, http.StatusOK, out)
}

// decodeKey reads a key from text or, when base64 names a query
// parameter that is set, from base64.
func decodeKey(r *http.Request, text, b64 string) ([]byte, bool, error) {
	if v := r.URL.Query().Get(b64); v != "" {
		if text != "" {
			return nil, false, fmt.Errorf("give the key as text or as %s, not both", b64)
		}
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			k, err = base64.URLEncoding.DecodeString(v)
		}
		if err != nil {
			return nil, false, fmt.Errorf("%s: %v", b64, err)
		}
		return k, true, nil
	}
	if text == "" {
		return nil, false, nil
	}
	return []byte(text), true, nil
}

func (q *queryServer) key(w http.ResponseWriter, r *http.Request) {
	sr, ok := q.readerOf(w, r, stream.KeyValueKind)
	if !ok {
		return
	}
	key, ok, err := decodeKey(r, r.PathValue("key"), "key_base64")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !ok {
		writeError(w, http.StatusBadRequest, "no key: use /stores/STORE/keys/KEY or ?key_base64=")
		return
	}
	if !q.route(w, r, sr, key, func() (bool, error) {
		_, found, err := sr.Get(key)
		return found, err
	}) {
		return
	}
	v, found, err := sr.Get(key)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("key not found in store %q", sr.name))
	default:
		writeJSON(w, http.StatusOK, entry(key, v, q.self()))
	}
}

// route decides who answers a query about key in sr: it returns true
// when this worker does (it owns the key, or the owner is unknown and
// found reports that a local task holds the key); otherwise it has
// answered: forwarded to the owner's ApplicationServer (see KeyOwner),
// or 503 for a forwarded request this worker does not own (never
// forwarded again) and for an owner not known yet (rebalancing, with
// Retry-After).
func (q *queryServer) route(w http.ResponseWriter, r *http.Request, sr *StoreReader, key []byte, found func() (bool, error)) bool {
	self := q.self()
	owner, err := q.a.KeyOwner(sr.name, key)
	switch {
	case err == nil && owner.String() == self:
		return true
	case err != nil && !errors.Is(err, ErrNotAvailable):
		writeError(w, http.StatusInternalServerError, err.Error())
		return false
	case r.Header.Get(ForwardedHeader) != "":
		unavailable(w, fmt.Sprintf("this worker (%s) does not own the key of store %q (forwarded request)", self, sr.name))
		return false
	case err == nil:
		q.forward(w, r, owner.String())
		return false
	}
	// The owner is unknown (no metadata yet, or this worker has no
	// ApplicationServer): answer when a local task holds the key.
	ok, ferr := found()
	if ferr != nil {
		writeError(w, http.StatusInternalServerError, ferr.Error())
		return false
	}
	if !ok {
		unavailable(w, fmt.Sprintf("the owner of the key in store %q is not known yet: %v", sr.name, err))
	}
	return ok
}

// peer sends GET uri (path and query) to host, marked forwarded.
func (q *queryServer) peer(ctx context.Context, host, uri string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+uri, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set(ForwardedHeader, "1")
	resp, err := q.client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody cancels its request's context when closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// forward relays r to host and its answer back.
func (q *queryServer) forward(w http.ResponseWriter, r *http.Request, host string) {
	resp, err := q.peer(r.Context(), host, r.URL.RequestURI())
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("forwarding to %s: %v", host, err))
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody))
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("forwarding to %s: %v", host, err))
		return
	}
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set(ForwardedHeader, host)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

func (q *queryServer) entries(w http.ResponseWriter, r *http.Request) {
	sr, ok := q.readerOf(w, r, stream.KeyValueKind)
	if !ok {
		return
	}
	qv := r.URL.Query()
	var from, to []byte
	peers := url.Values{}
	if strings.HasSuffix(r.URL.Path, "/range") {
		var err error
		if from, _, err = decodeKey(r, qv.Get("from"), "from_base64"); err == nil {
			to, _, err = decodeKey(r, qv.Get("to"), "to_base64")
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if from != nil {
			peers.Set("from_base64", base64.StdEncoding.EncodeToString(from))
		}
		if to != nil {
			peers.Set("to_base64", base64.StdEncoding.EncodeToString(to))
		}
	}
	limit, scope, ok := listing(w, r)
	if !ok {
		return
	}
	local := func(out *answer[QueryEntry]) error {
		self := q.self()
		for kv, err := range sr.Range(from, to) {
			if err != nil {
				return err
			}
			if len(out.Entries) == limit {
				out.Truncated = true
				break
			}
			out.Entries = append(out.Entries, entry(kv.Key, kv.Value, self))
		}
		return nil
	}
	gather(q, w, r, sr, scope, limit, peers, local, func(x, y QueryEntry) int {
		return bytes.Compare(mustB64(x.KeyBase64), mustB64(y.KeyBase64))
	})
}

// listing parses a listing query's ?limit= and ?scope=, or answers 400.
// A forwarded request is always local: a fan-out never fans out again.
func listing(w http.ResponseWriter, r *http.Request) (limit int, scope string, ok bool) {
	qv := r.URL.Query()
	limit = defaultQueryLimit
	if s := qv.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > maxQueryLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1 to %d", maxQueryLimit))
			return 0, "", false
		}
		limit = n
	}
	scope = qv.Get("scope")
	switch scope {
	case "", "local":
		scope = "local"
	case "all":
		if r.Header.Get(ForwardedHeader) != "" {
			scope = "local"
		}
	default:
		writeError(w, http.StatusBadRequest, `scope must be "local" or "all"`)
		return 0, "", false
	}
	return limit, scope, true
}

// gather answers a listing query: this worker's entries (local fills an
// answer with at most limit of them) for the local scope or a global
// store, else every host's, asked with the request's path and the query
// parameters peers (plus scope=local and the limit), merged in cmp's
// order and cut at limit.
func gather[E any](q *queryServer, w http.ResponseWriter, r *http.Request, sr *StoreReader, scope string, limit int, peers url.Values,
	local func(*answer[E]) error, cmp func(x, y E) int) {
	out := answer[E]{Store: sr.name, Scope: scope, Entries: []E{}}
	if scope == "local" || sr.global {
		if err := local(&out); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	hosts, complete, err := q.a.StoreHosts(sr.name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !complete {
		unavailable(w, fmt.Sprintf("not every task of store %q has a known host yet", sr.name))
		return
	}
	self := q.self()
	uq := url.Values{}
	for k, v := range peers {
		uq[k] = v
	}
	uq.Set("scope", "local")
	uq.Set("limit", strconv.Itoa(limit))
	uri := r.URL.EscapedPath() + "?" + uq.Encode()
	parts := make([]answer[E], len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		if h.Host.String() == self {
			errs[i] = local(&parts[i])
			continue
		}
		wg.Go(func() { errs[i] = fetchAnswer(r.Context(), q, h.Host.String(), uri, &parts[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("querying %s: %v", hosts[i].Host, err))
			return
		}
		out.Entries = append(out.Entries, parts[i].Entries...)
		out.Truncated = out.Truncated || parts[i].Truncated
	}
	slices.SortStableFunc(out.Entries, cmp)
	if len(out.Entries) > limit {
		out.Entries, out.Truncated = out.Entries[:limit], true
	}
	writeJSON(w, http.StatusOK, out)
}

func mustB64(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}

// fetchAnswer asks host for its local part of a listing query.
func fetchAnswer[E any](ctx context.Context, q *queryServer, host, uri string, out *answer[E]) error {
	resp, err := q.peer(ctx, host, uri)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, out)
}

// timeParam parses the query parameter name, a time in epoch
// milliseconds or RFC 3339; def when absent.
func timeParam(qv url.Values, name string, def int64) (int64, error) {
	s := qv.Get(name)
	if s == "" {
		return def, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is neither epoch milliseconds nor an RFC 3339 time", name, s)
	}
	return t.UnixMilli(), nil
}

// timeRange parses ?from= and ?to= (open when absent), from <= to.
func timeRange(qv url.Values) (from, to int64, err error) {
	if from, err = timeParam(qv, "from", math.MinInt64); err != nil {
		return 0, 0, err
	}
	if to, err = timeParam(qv, "to", math.MaxInt64); err != nil {
		return 0, 0, err
	}
	if from > to {
		return 0, 0, fmt.Errorf("from (%d) is after to (%d)", from, to)
	}
	return from, to, nil
}

// sizeParam parses ?size=, a window size as a Go duration ("5m") or in
// milliseconds; 0 when absent.
func sizeParam(qv url.Values) (int64, error) {
	s := qv.Get("size")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d, derr := time.ParseDuration(s)
		if derr != nil {
			return 0, fmt.Errorf("size=%q is neither a duration nor milliseconds", s)
		}
		n = d.Milliseconds()
	}
	if n <= 0 {
		return 0, fmt.Errorf("size=%q: a window size must be at least 1 ms", s)
	}
	return n, nil
}

// windowParams parses what every window and session query takes: the
// key (ok false without one), the time range and the limit and scope.
type windowParams struct {
	key      []byte
	hasKey   bool
	from, to int64
	limit    int
	scope    string
}

func parseWindowParams(w http.ResponseWriter, r *http.Request) (windowParams, bool) {
	qv := r.URL.Query()
	var p windowParams
	var err error
	if p.key, p.hasKey, err = decodeKey(r, qv.Get("key"), "key_base64"); err == nil {
		p.from, p.to, err = timeRange(qv)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return p, false
	}
	var ok bool
	p.limit, p.scope, ok = listing(w, r)
	return p, ok
}

// peerParams are the parameters a fan-out passes on.
func (p windowParams) peerParams() url.Values {
	return url.Values{"from": {strconv.FormatInt(p.from, 10)}, "to": {strconv.FormatInt(p.to, 10)}}
}

// compareWindows orders windows by key bytes, start, then end.
func compareWindows(x, y QueryWindow) int {
	if c := bytes.Compare(mustB64(x.KeyBase64), mustB64(y.KeyBase64)); c != 0 {
		return c
	}
	if c := cmpInt(x.Start, y.Start); c != 0 {
		return c
	}
	var xe, ye int64
	if x.End != nil {
		xe = *x.End
	}
	if y.End != nil {
		ye = *y.End
	}
	return cmpInt(xe, ye)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// collectWindows appends seq's entries to out, made by mk, up to limit.
func collectWindows[T any](seq iter.Seq2[T, error], limit int, out *answer[QueryWindow], mk func(T) QueryWindow) error {
	for e, err := range seq {
		if err != nil {
			return err
		}
		if len(out.Entries) == limit {
			out.Truncated = true
			break
		}
		out.Entries = append(out.Entries, mk(e))
	}
	return nil
}

// hasAny reports whether seq yields an entry.
func hasAny[T any](seq iter.Seq2[T, error]) (bool, error) {
	for _, err := range seq {
		return err == nil, err
	}
	return false, nil
}

// windows serves /stores/S/windows.
func (q *queryServer) windows(w http.ResponseWriter, r *http.Request) {
	sr, ok := q.readerOf(w, r, stream.WindowKind)
	if !ok {
		return
	}
	p, ok := parseWindowParams(w, r)
	if !ok {
		return
	}
	size, err := sizeParam(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	self := q.self()
	mk := func(e stream.WindowStoreEntry) QueryWindow {
		qw := QueryWindow{QueryEntry: entry(e.Key, e.Value, self), Start: e.Start, Timestamp: e.Timestamp}
		if size > 0 {
			end := e.Start + size
			if end < e.Start {
				end = math.MaxInt64 // overflow: clamped, as Kafka does
			}
			qw.End = &end
		}
		return qw
	}
	if p.hasKey {
		if !q.route(w, r, sr, p.key, func() (bool, error) { return hasAny(sr.FetchWindows(p.key, p.from, p.to)) }) {
			return
		}
		out := answer[QueryWindow]{Store: sr.name, Scope: "key", Entries: []QueryWindow{}}
		if err := collectWindows(sr.FetchWindows(p.key, p.from, p.to), p.limit, &out, mk); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	peers := p.peerParams()
	if size > 0 {
		peers.Set("size", strconv.FormatInt(size, 10))
	}
	gather(q, w, r, sr, p.scope, p.limit, peers, func(out *answer[QueryWindow]) error {
		return collectWindows(sr.FetchAllWindows(p.from, p.to), p.limit, out, mk)
	}, compareWindows)
}

// sessions serves /stores/S/sessions.
func (q *queryServer) sessions(w http.ResponseWriter, r *http.Request) {
	sr, ok := q.readerOf(w, r, stream.SessionKind)
	if !ok {
		return
	}
	p, ok := parseWindowParams(w, r)
	if !ok {
		return
	}
	self := q.self()
	mk := func(e stream.SessionStoreEntry) QueryWindow {
		end := e.End
		return QueryWindow{QueryEntry: entry(e.Key, e.Value, self), Start: e.Start, End: &end, Timestamp: e.Timestamp}
	}
	if p.hasKey {
		if !q.route(w, r, sr, p.key, func() (bool, error) { return hasAny(sr.FindSessions(p.key, p.from, p.to)) }) {
			return
		}
		out := answer[QueryWindow]{Store: sr.name, Scope: "key", Entries: []QueryWindow{}}
		if err := collectWindows(sr.FindSessions(p.key, p.from, p.to), p.limit, &out, mk); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	// Every session overlapping [from, to].
	overlapping := func(yield func(stream.SessionStoreEntry, error) bool) {
		for e, err := range sr.AllSessions() {
			if err == nil && (e.End < p.from || e.Start > p.to) {
				continue
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
	gather(q, w, r, sr, p.scope, p.limit, p.peerParams(), func(out *answer[QueryWindow]) error {
		return collectWindows(overlapping, p.limit, out, mk)
	}, compareWindows)
}
