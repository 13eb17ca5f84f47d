package broker

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxAPIKey bounds the per-API-key caches.
const maxAPIKey = 100

// metrics holds the broker's Prometheus collectors.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	bytesIn     *prometheus.CounterVec
	bytesOut    *prometheus.CounterVec
	recordsIn   *prometheus.CounterVec
	recordsOut  *prometheus.CounterVec
	connections prometheus.Gauge
	state       *stateCollector

	// Children cached per API key for the hot path.
	okByKey  [maxAPIKey]prometheus.Counter
	durByKey [maxAPIKey]prometheus.Observer
}

// topicMetrics are a topic's counters, looked up once when the topic is
// created or loaded.
type topicMetrics struct {
	bytesIn, bytesOut, recordsIn, recordsOut prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_requests_total",
			Help: "Kafka requests handled, by API and response error code.",
		}, []string{"api", "error"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eddy_request_duration_seconds",
			Help:    "Time from reading a request to handing its response to the writer, by API.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"api"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_bytes_in_total",
			Help: "Record batch bytes appended by Produce, by topic.",
		}, []string{"topic"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_bytes_out_total",
			Help: "Record batch bytes returned by Fetch, by topic.",
		}, []string{"topic"}),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_records_in_total",
			Help: "Records appended by Produce, by topic.",
		}, []string{"topic"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_records_out_total",
			Help: "Records returned by Fetch, by topic: the offsets each fetched range spans (more than the records only where compaction left offset gaps).",
		}, []string{"topic"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_connections_open",
			Help: "Open Kafka client connections.",
		}),
		state: &stateCollector{
			endOffset: prometheus.NewDesc("eddy_log_end_offset",
				"Next offset to be assigned in the partition (the high watermark).",
				[]string{"topic", "partition"}, nil),
			startOffset: prometheus.NewDesc("eddy_log_start_offset",
				"First offset still in the partition.",
				[]string{"topic", "partition"}, nil),
			size: prometheus.NewDesc("eddy_log_size_bytes",
				"Bytes of all segments of the partition.",
				[]string{"topic", "partition"}, nil),
			lag: prometheus.NewDesc("eddy_consumer_group_lag",
				"Log end offset minus the group's committed offset.",
				[]string{"group", "topic", "partition"}, nil),
		},
	}
	for key := range int16(maxAPIKey) {
		if name := kmsg.NameForKey(key); name != "" {
			m.okByKey[key] = m.requests.WithLabelValues(name, "NONE")
			m.durByKey[key] = m.duration.WithLabelValues(name)
		}
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.bytesIn, m.bytesOut,
		m.recordsIn, m.recordsOut, m.connections, m.state}
}

// observe records one handled request.
func (m *metrics) observe(key int16, code int16, seconds float64) {
	if key < 0 || key >= maxAPIKey || m.durByKey[key] == nil {
		return
	}
	m.durByKey[key].Observe(seconds)
	if code == 0 {
		m.okByKey[key].Inc()
		return
	}
	m.requests.WithLabelValues(kmsg.NameForKey(key), errorName(code)).Inc()
}

func (m *metrics) topic(name string) *topicMetrics {
	return &topicMetrics{
		bytesIn:    m.bytesIn.WithLabelValues(name),
		bytesOut:   m.bytesOut.WithLabelValues(name),
		recordsIn:  m.recordsIn.WithLabelValues(name),
		recordsOut: m.recordsOut.WithLabelValues(name),
	}
}

func (m *metrics) deleteTopic(name string, _ int) {
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.bytesOut, m.recordsIn, m.recordsOut} {
		v.DeleteLabelValues(name)
	}
}

// committedOffset is one committed offset, for the lag gauge.
type committedOffset struct {
	group, topic string
	partition    int32
	offset       int64
}

// stateCollector computes the partition and lag gauges at scrape time from
// the topic manager and the group coordinator.
type stateCollector struct {
	endOffset, startOffset, size, lag *prometheus.Desc

	mu        sync.Mutex
	topics    *topicManager
	committed func() []committedOffset
}

func (c *stateCollector) set(tm *topicManager, committed func() []committedOffset) {
	c.mu.Lock()
	c.topics, c.committed = tm, committed
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.endOffset
	ch <- c.startOffset
	ch <- c.size
	ch <- c.lag
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	tm, committed := c.topics, c.committed
	c.mu.Unlock()
	if tm == nil {
		return
	}
	for _, t := range tm.list() {
		for _, p := range t.partitions() {
			if p == nil {
				continue
			}
			ps := strconv.Itoa(int(p.id))
			ch <- prometheus.MustNewConstMetric(c.endOffset, prometheus.GaugeValue, float64(p.log.EndOffset()), t.name, ps)
			ch <- prometheus.MustNewConstMetric(c.startOffset, prometheus.GaugeValue, float64(p.log.StartOffset()), t.name, ps)
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(p.log.Size()), t.name, ps)
		}
	}
	if committed == nil {
		return
	}
	for _, co := range committed() {
		t := tm.get(co.topic)
		if t == nil || co.offset < 0 {
			continue
		}
		p := t.partition(co.partition)
		if p == nil {
			continue
		}
		lag := max(p.log.EndOffset()-co.offset, 0)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag),
			co.group, co.topic, strconv.Itoa(int(co.partition)))
	}
}
