package jobs

import (
	"net/http"

	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/httpapi"
)

// Sentinels of the job service, checked with errors.Is (an *httpapi.Error
// matches a sentinel of the same code).
var (
	ErrJobNotFound     = httpapi.New(http.StatusNotFound, "JOB_NOT_FOUND", "no such job")
	ErrJobNotOpen      = evidence.ErrJobNotOpen
	ErrJobFinished     = httpapi.New(http.StatusConflict, "JOB_FINISHED", "the job is already finished")
	ErrBundlesNotFound = httpapi.New(http.StatusNotFound, "BUNDLES_NOT_FOUND", "the job has no bundles (not finished?)")
	// ErrSecretRefused: the evidence gate refused a record holding a
	// secret the job has seen.
	ErrSecretRefused = evidence.ErrSecretRefused
)
