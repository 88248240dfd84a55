package sqsbatch

import (
	"context"
	"fmt"
)

// MaxGroupIDLen is the longest MessageGroupId SQS accepts.
const MaxGroupIDLen = 128

// SendGroup is Send with every message in the message group group: on a
// standard queue that is the tenant of an SQS fair queue, which SQS uses
// to keep one tenant's backlog from delaying the others' messages
// ("Amazon SQS fair queues", https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html:
// tenants are identified by MessageGroupId; a noisy tenant's messages are
// neither dropped nor throttled, quiet tenants' are delivered first). On a
// standard queue the group orders nothing; on a FIFO queue it would.
func (s *Sender) SendGroup(ctx context.Context, group string, bodies [][]byte) error {
	if !validGroupID(group) {
		return fmt.Errorf("sqs send to %s: message group id of %d characters is not 1 to %d of SQS's allowed characters",
			queueName(s.queueURL), len(group), MaxGroupIDLen)
	}
	msgs := make([]message, len(bodies))
	for i, b := range bodies {
		msgs[i] = message{Body: b, GroupID: group}
	}
	return s.sendMessages(ctx, msgs)
}

// validGroupID reports whether SQS accepts g as a MessageGroupId: 1 to 128
// characters, letters, digits and ASCII punctuation.
func validGroupID(g string) bool {
	if len(g) == 0 || len(g) > MaxGroupIDLen {
		return false
	}
	for _, c := range []byte(g) {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}
