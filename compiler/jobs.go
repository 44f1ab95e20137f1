package compiler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler/jobs"
	"github.com/galley-dev/galley/compiler/stack"
)

// renderedJob is one job of the stack, rendered.
type renderedJob struct {
	job     *stack.Job
	objects []*Object
}

// renderJobs renders every job; a job's objects are checked like a chart's
// (one Kubernetes object per document) and must not collide with an app's.
func renderJobs(s *stack.Stack, apps []*renderedApp) ([]*renderedJob, error) {
	var out []*renderedJob
	var errs stack.Errors
	for _, j := range s.Jobs {
		docs, err := jobs.Render(j.Spec, jobs.Options{StackName: s.Name})
		if err != nil {
			errs = append(errs, jobError(j, "", "%v", err))
			continue
		}
		r := &renderedJob{job: j}
		for _, doc := range docs {
			o, err := parseObject(doc, "job "+j.Name)
			if err != nil {
				return nil, fmt.Errorf("rendering job %s: %w", j.Name, err)
			}
			r.objects = append(r.objects, o)
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := checkJobCollisions(apps, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkJobCollisions refuses a job whose object an app writes too.
func checkJobCollisions(apps []*renderedApp, rendered []*renderedJob) error {
	if len(rendered) == 0 {
		return nil
	}
	owner := map[string]*renderedApp{}
	for _, r := range apps {
		for _, o := range r.objects {
			owner[o.Key(r.app.Namespace)] = r
		}
	}
	var errs stack.Errors
	for _, r := range rendered {
		for _, o := range r.objects {
			if a, ok := owner[o.Key(r.job.Namespace)]; ok {
				e := jobError(r.job, "", "job %s and app %s both write %s %s in namespace %s: rename one",
					r.job.Name, a.app.Name, o.Kind, o.Name, r.job.Namespace)
				e.Related = append(e.Related, a.app.Pos(""))
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// addJobs writes each job's objects to apps/<name>/ and lists the jobs and
// their images in the index.
func addJobs(tree *bundles.Tree, index *bundles.Index, rendered []*renderedJob, waves map[string]int, allImages map[string]bool) error {
	for _, r := range rendered {
		dir := bundles.AppDir(r.job.Name)
		images, err := addObjects(tree, dir, "job "+r.job.Name, r.objects)
		if err != nil {
			return err
		}
		for _, im := range images {
			allImages[im] = true
		}
		deps := append([]string{}, r.job.DependsOn...)
		sort.Strings(deps)
		index.Jobs = append(index.Jobs, bundles.IndexJob{
			Name:      r.job.Name,
			Kind:      r.job.Kind,
			Namespace: r.job.Namespace,
			Path:      dir,
			Schedule:  r.job.Schedule,
			SyncWave:  waves[r.job.Name],
			DependsOn: deps,
			Objects:   len(r.objects),
			Images:    images,
		})
	}
	return nil
}

func jobError(j *stack.Job, field, format string, args ...any) *stack.Error {
	path := "stack.jobs." + j.Name
	if field != "" {
		path += "." + field
	}
	return &stack.Error{Pos: j.Pos(field), Path: path, Msg: strings.TrimSpace(fmt.Sprintf(format, args...))}
}
