package sqsbatch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// fakeSQS records calls and answers them through the hooks a test sets;
// without hooks every call succeeds.
type fakeSQS struct {
	mu sync.Mutex

	// batchHook answers SendMessageBatch call number n (0-based).
	batchHook func(n int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
	// batches holds the entries of every SendMessageBatch call.
	batches [][]types.SendMessageBatchRequestEntry

	visibility []sqs.ChangeMessageVisibilityInput
	visErr     error

	// urls maps "account/name" to the URL GetQueueUrl answers.
	urls       map[string]string
	getURLs    int
	getURLErrs int // the first getURLErrs calls fail
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	n := len(f.batches)
	f.batches = append(f.batches, append([]types.SendMessageBatchRequestEntry(nil), in.Entries...))
	hook := f.batchHook
	f.mu.Unlock()
	if hook != nil {
		return hook(n, in)
	}
	return allOK(in), nil
}

func (f *fakeSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.visibility = append(f.visibility, *in)
	if f.visErr != nil {
		return nil, f.visErr
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (f *fakeSQS) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getURLs++
	if f.getURLs <= f.getURLErrs {
		return nil, fmt.Errorf("fake: GetQueueUrl unavailable")
	}
	url, ok := f.urls[aws.ToString(in.QueueOwnerAWSAccountId)+"/"+aws.ToString(in.QueueName)]
	if !ok {
		return nil, &types.QueueDoesNotExist{Message: aws.String("no such queue")}
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String(url)}, nil
}

func (f *fakeSQS) calls() [][]types.SendMessageBatchRequestEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]types.SendMessageBatchRequestEntry(nil), f.batches...)
}

// allOK answers a batch as fully successful.
func allOK(in *sqs.SendMessageBatchInput) *sqs.SendMessageBatchOutput {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out
}

// failSome answers a batch with the entries whose body is in fail failed.
func failSome(in *sqs.SendMessageBatchInput, fail map[string]bool, senderFault bool) *sqs.SendMessageBatchOutput {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if fail[aws.ToString(e.MessageBody)] {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: senderFault})
			continue
		}
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out
}

// randomToken returns a fresh random marker standing in for secret material.
func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "tok-" + hex.EncodeToString(b)
}

// testLogger returns a JSON logger writing into a buffer the test inspects.
func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, nil)), buf
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
