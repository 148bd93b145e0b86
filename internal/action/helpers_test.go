package action_test

import (
	"errors"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/action"
)

func asResultError(err error, target **action.ResultError) bool { return errors.As(err, target) }

func restConfigFor(host string) *rest.Config {
	return &rest.Config{Host: host, Timeout: 5 * time.Second, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}
