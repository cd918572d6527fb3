package decisionlog

// OutcomeLine is the line the writer writes for o, for tests.
func OutcomeLine(o *Outcome) ([]byte, error) { return o.appendJSON(nil) }
