package forward

import "github.com/metricgate/metricgate/pkg/deadletter"

// DeadLetter is one line InfluxDB refused for good, as the dead-letter
// file keeps it: one JSON object per line (see package deadletter).
type DeadLetter = deadletter.Letter
