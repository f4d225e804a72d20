package batch

// EnvelopeSingles returns c set to send a batch of one message as an
// envelope too, so that a test can make every message travel in one.
func EnvelopeSingles(c Config) Config {
	c.envelopeSingles = true
	return c
}

// Waiting returns how many messages of topic wait in batches not yet sent
// (their callers still waiting), so a test can tell when concurrent
// callers have joined.
func Waiting(p *Publisher, topic string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.topics[topic]
	if q == nil {
		return 0
	}
	n := 0
	for _, b := range q.pending {
		for _, e := range b.entries {
			if e.state.Load() == entryWaiting {
				n++
			}
		}
	}
	return n
}
