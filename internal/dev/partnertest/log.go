package partnertest

import (
	"io"
	"log"
)

// discardLog keeps net/http's "http: response.WriteHeader" chatter from
// injected faults out of test output.
var discardLog = log.New(io.Discard, "", 0)
