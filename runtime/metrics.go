package runtime

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus collectors (see the package doc
// for the list). They exist whether or not a Registerer is configured.
type metrics struct {
	processed        *prometheus.CounterVec
	processLatency   *prometheus.HistogramVec
	commitLatency    *prometheus.HistogramVec
	e2eLatency       *prometheus.HistogramVec
	lateness         *prometheus.HistogramVec
	dropped          *prometheus.CounterVec
	restoreRemaining *prometheus.GaugeVec
	restored         *prometheus.CounterVec
	storeEntries     *prometheus.GaugeVec
	lag              *prometheus.GaugeVec
	activeTasks      *prometheus.GaugeVec
	standbyTasks     *prometheus.GaugeVec
	rebalances       *prometheus.CounterVec
	txnCommits       *prometheus.CounterVec
	txnAborts        *prometheus.CounterVec
	// clientReplacements counts threads starting over with a new client.
	clientReplacements *prometheus.CounterVec
}

const metricPrefix = "eddy_streams_"

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	lat := []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5}
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "records_processed_total",
			Help: "Input records processed by the stream thread's active tasks."}, []string{"thread"}),
		processLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricPrefix + "process_latency_seconds",
			Help: "Time to process one input record through its sub-topology.", Buckets: lat}, []string{"thread"}),
		commitLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricPrefix + "commit_latency_seconds",
			Help: "Time of one commit: flush tasks, wait for acks, write checkpoints, commit offsets.", Buckets: lat}, []string{"thread"}),
		e2eLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricPrefix + "end_to_end_latency_seconds",
			Help:    "Wall-clock time minus the record timestamp, when a record is written to an output topic.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300}}, []string{"thread"}),
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricPrefix + "record_lateness_seconds",
			Help:    "How far an input record's timestamp is below its task's stream time, for out-of-order records only.",
			Buckets: []float64{.001, .01, .1, 1, 10, 60, 300, 900, 3600, 21600, 86400}}, []string{"thread"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "dropped_records_total",
			Help: "Records dropped, by reason (null-key, deserialization, processing, production, invalid-timestamp, late)."}, []string{"thread", "reason"}),
		restoreRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "restore_remaining_records",
			Help: "Changelog (or global topic) records still to restore before the store's tasks can process."}, []string{"store"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "restored_records_total",
			Help: "Changelog records applied to the store by restores and standby replicas; global topic records applied by the global store's bootstrap."}, []string{"store"}),
		storeEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "store_entries",
			Help: "Approximate number of keys in an active task's store (task \"global\": a global store), sampled at commit."}, []string{"store", "task"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "consumer_lag_records",
			Help: "Records between the stream thread's fetch positions and the high watermarks, summed over its input partitions."}, []string{"thread"}),
		activeTasks: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "active_tasks",
			Help: "Active tasks owned by the stream thread."}, []string{"thread"}),
		standbyTasks: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "standby_tasks",
			Help: "Standby tasks owned by the stream thread."}, []string{"thread"}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "rebalances_total",
			Help: "Assignments the stream thread received."}, []string{"thread"}),
		txnCommits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "transactions_committed_total",
			Help: "Exactly-once: transactions the stream thread committed."}, []string{"thread"}),
		txnAborts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "transactions_aborted_total",
			Help: "Exactly-once: transactions the stream thread aborted, rewinding its tasks to the last commit."}, []string{"thread"}),
		clientReplacements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "client_replacements_total",
			Help: "Exactly-once: times the stream thread replaced its fenced client (leaving and rejoining the group)."}, []string{"thread"}),
	}
	if reg == nil {
		return m, nil
	}
	register := func(c prometheus.Collector) (prometheus.Collector, error) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return are.ExistingCollector, nil
			}
			return nil, err
		}
		return c, nil
	}
	var err error
	reuse := func(dst any, c prometheus.Collector) {
		if err != nil {
			return
		}
		got, e := register(c)
		if e != nil {
			err = e
			return
		}
		switch d := dst.(type) {
		case **prometheus.CounterVec:
			*d = got.(*prometheus.CounterVec)
		case **prometheus.GaugeVec:
			*d = got.(*prometheus.GaugeVec)
		case **prometheus.HistogramVec:
			*d = got.(*prometheus.HistogramVec)
		}
	}
	reuse(&m.processed, m.processed)
	reuse(&m.processLatency, m.processLatency)
	reuse(&m.commitLatency, m.commitLatency)
	reuse(&m.e2eLatency, m.e2eLatency)
	reuse(&m.lateness, m.lateness)
	reuse(&m.dropped, m.dropped)
	reuse(&m.restoreRemaining, m.restoreRemaining)
	reuse(&m.restored, m.restored)
	reuse(&m.storeEntries, m.storeEntries)
	reuse(&m.lag, m.lag)
	reuse(&m.activeTasks, m.activeTasks)
	reuse(&m.standbyTasks, m.standbyTasks)
	reuse(&m.rebalances, m.rebalances)
	reuse(&m.txnCommits, m.txnCommits)
	reuse(&m.txnAborts, m.txnAborts)
	reuse(&m.clientReplacements, m.clientReplacements)
	return m, err
}
