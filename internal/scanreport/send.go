package scanreport

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSAPI is the part of the SQS client Send needs.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Send puts each body on the queue, in order, and returns how many were
// sent. It stops at the first failure, whose error names the batch but
// never its content; the SDK has already retried it.
func Send(ctx context.Context, c SQSAPI, queueURL string, bodies [][]byte) (int, error) {
	for i, b := range bodies {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(b))}); err != nil {
			return i, fmt.Errorf("send batch %d of %d: %w", i+1, len(bodies), err)
		}
	}
	return len(bodies), nil
}
