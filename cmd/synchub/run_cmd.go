package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/synchub/synchub/api"
	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/replay"
	"github.com/synchub/synchub/router"
)

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", defaultConfig, "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path, nil)
	if err != nil {
		return fmt.Errorf("%s:\n%w", *path, err)
	}
	log := newLogger(stderr)
	defer func() { _ = log.Sync() }()
	return serve(ctx, *path, cfg, log)
}

func newLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), zap.InfoLevel))
}

func serve(ctx context.Context, path string, cfg *config.Config, log *zap.Logger) error {
	brokers := cfg.Kafka.Brokers
	if len(brokers) == 0 {
		broker, err := kafka.StartEmbedded(cfg.Kafka.Embedded.Listen, cfg.Kafka.Embedded.DataDir)
		if err != nil {
			return err
		}
		defer broker.Close()
		brokers = []string{broker.Addr()}
		log.Info("embedded Kafka broker listening", zap.String("addr", broker.Addr()), zap.String("data_dir", cfg.Kafka.Embedded.DataDir))
	} else {
		log.Info("using Kafka cluster", zap.Strings("brokers", brokers))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hub, err := router.New(router.Deps{Config: cfg, Brokers: brokers, Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	log.Info("topics ready", zap.Int("partitions", cfg.Kafka.Partitions))
	logCustomers(log, cfg)

	ops, err := replay.New(replay.Deps{Brokers: brokers, Config: hub.Config, Connectors: router.Connectors()})
	if err != nil {
		return errors.Join(err, hub.Close())
	}
	defer ops.Close()
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return errors.Join(fmt.Errorf("http listen on %s: %w", cfg.HTTP.Listen, err), hub.Close())
	}
	handler := api.NewHandler(api.Deps{Ready: hub.Ready, Registry: reg, Admin: ops, AdminToken: cfg.HTTP.AdminToken})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", zap.Error(err))
		}
	}()
	log.Info("http listening", zap.String("addr", ln.Addr().String()))

	runErr := make(chan error, 1)
	go func() { runErr <- hub.Run(ctx) }()
	select {
	case <-hub.Running():
		log.Info("synchub running")
		go watchConfig(ctx, path, cfg, hub, time.Second, log)
	case err := <-runErr:
		return errors.Join(err, hub.Close())
	}

	<-ctx.Done()
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(shutdownCtx), hub.Close(), <-runErr)
	log.Info("stopped")
	return err
}
