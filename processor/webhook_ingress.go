package processor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/ingress"
	"github.com/cdcsync/cdcsync/topology"
)

// webhookIngress is the worker's ingress endpoint (Config.IngressAddr):
// every webhook topology's source.webhook.path, in front of one producer
// of raw records. Built in New (secrets are read there, so a missing one
// stops the worker at start), run by Worker.Run.
type webhookIngress struct {
	srv    *ingress.Server
	plans  []*topology.Plan
	prod   lazyProducer
	addr   atomic.Pointer[string]
	cfg    Config
	log    *zap.Logger
	listen net.Listener
}

// newWebhookIngress returns nil when no plan is a webhook topology or
// the ingress is disabled.
func newWebhookIngress(cfg Config, plans []*topology.Plan, m *metrics, log *zap.Logger) (*webhookIngress, error) {
	var eps []ingress.Endpoint
	var hooks []*topology.Plan
	for _, plan := range plans {
		if plan.Format() != topology.WebhookJSON {
			continue
		}
		hooks = append(hooks, plan)
		wh := plan.Webhook()
		secrets := make([]string, 0, len(wh.Secrets))
		for i, ref := range wh.Secrets {
			s, err := ingress.LoadSecret(ref)
			if err != nil {
				return nil, &ConfigError{Key: fmt.Sprintf("topology %s (%s): source.webhook.secrets[%d]", plan.Name(), plan.File(), i), Reason: err.Error()}
			}
			secrets = append(secrets, s)
		}
		v, err := ingress.NewVerifier(ingress.VerifierConfig{Scheme: ingress.Scheme(wh.Scheme), Secrets: secrets,
			Tolerance: wh.Tolerance, Header: wh.Header, Encoding: wh.Encoding, Prefix: wh.Prefix})
		if err != nil {
			return nil, &ConfigError{Key: fmt.Sprintf("topology %s (%s): source.webhook", plan.Name(), plan.File()), Reason: err.Error()}
		}
		eps = append(eps, ingress.Endpoint{Topology: plan.Name(), Path: wh.Path, Topic: string(plan.RawTopic()),
			Verifier: v, Map: WebhookMap(plan), MaxBody: int64(wh.MaxBody)})
	}
	if len(hooks) == 0 {
		return nil, nil
	}
	if cfg.IngressAddr == "" {
		log.Warn("webhook topologies loaded but ingress_addr is empty: this worker consumes their raw topics but serves no endpoint")
		return nil, nil
	}
	wi := &webhookIngress{plans: hooks, cfg: cfg, log: log.Named("ingress")}
	srv, err := ingress.New(ingress.DefaultConfig(), eps, &wi.prod, m.ingress, wi.log)
	if err != nil {
		return nil, &ConfigError{Key: "ingress_addr", Reason: err.Error()}
	}
	wi.srv = srv
	return wi, nil
}

// lazyProducer answers "unavailable" until the ingress has connected.
type lazyProducer struct {
	p atomic.Pointer[ingress.KafkaProducer]
}

var errNotConnected = errors.New("processor: ingress not connected to the brokers yet")

func (l *lazyProducer) Produce(ctx context.Context, msg *sarama.ProducerMessage) error {
	p := l.p.Load()
	if p == nil {
		return errNotConnected
	}
	return p.Produce(ctx, msg)
}

// start listens on IngressAddr; a failure is a configuration error.
func (wi *webhookIngress) start() error {
	ln, err := net.Listen("tcp", wi.cfg.IngressAddr)
	if err != nil {
		return fmt.Errorf("%w: ingress_addr: %v", ErrConfig, err)
	}
	a := ln.Addr().String()
	wi.addr.Store(&a)
	wi.listen = ln
	return nil
}

// run serves until ctx is done, connecting in the background (answering
// 503 until connected) and creating the raw topics that are missing.
// It returns after the server has stopped and the producer has flushed.
func (wi *webhookIngress) run(ctx context.Context) error {
	connected := make(chan sarama.Client, 1)
	go func() {
		defer close(connected)
		sc, err := wi.cfg.saramaConfig("ingress")
		if err != nil {
			wi.log.Error("ingress producer config", zap.Error(err))
			return
		}
		sc.Producer.Retry.Max = 3 // a sender retries after a 503; a long internal retry only delays the answer
		client, err := connect(ctx, wi.cfg.Brokers, sc, wi.log)
		if err != nil {
			if ctx.Err() == nil {
				wi.log.Error("ingress cannot connect; answering 503 until restarted", zap.Error(err))
			}
			return
		}
		for attempt := 0; ; attempt++ {
			if err = wi.ensureRawTopics(client); err == nil {
				break
			}
			wi.log.Warn("creating the webhook raw topics", zap.Error(err))
			if !sleep(ctx, backoff(attempt, 200*time.Millisecond, 10*time.Second)) {
				_ = client.Close()
				return
			}
		}
		p, err := ingress.NewKafkaProducer(client)
		if err != nil {
			wi.log.Error("ingress producer", zap.Error(err))
			_ = client.Close()
			return
		}
		wi.prod.p.Store(p)
		connected <- client
	}()
	wi.log.Info("serving webhooks", zap.String("addr", *wi.addr.Load()))
	err := wi.srv.Serve(ctx, wi.listen)
	if client, ok := <-connected; ok {
		_ = wi.prod.p.Load().Close()
		_ = client.Close()
	}
	return err
}

func (wi *webhookIngress) ensureRawTopics(client sarama.Client) error {
	if err := client.RefreshMetadata(); err != nil {
		return err
	}
	have, err := client.Topics()
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, t := range have {
		exists[t] = true
	}
	var admin sarama.ClusterAdmin
	for _, plan := range wi.plans {
		t := string(plan.RawTopic())
		if exists[t] {
			continue
		}
		if admin == nil {
			// Not closed: closing an admin made from a client closes the
			// client, which the producer goes on using.
			if admin, err = sarama.NewClusterAdminFromClient(client); err != nil {
				return err
			}
		}
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: int32(plan.Webhook().Partitions), ReplicationFactor: wi.cfg.ReplicationFactor}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("creating raw topic %s: %w", t, err)
		}
		wi.log.Info("created webhook raw topic", zap.String("topic", t), zap.Int("partitions", plan.Webhook().Partitions))
	}
	return client.RefreshMetadata()
}
