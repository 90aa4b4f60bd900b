package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The JSON lines encoding: one Report per line, as LOCKSCOPE_REPORT_FILE
// holds them and `lockscope report` reads them.

// MaxLine bounds one line of a report file; a longer line is corrupt.
const MaxLine = 64 << 20

// AppendLine appends r's JSON encoding and a newline to b.
func AppendLine(b []byte, r *Report) ([]byte, error) {
	j, err := json.Marshal(r)
	if err != nil {
		return b, err
	}
	return append(append(b, j...), '\n'), nil
}

// AppendClassEdge appends e as a JSON line ({"class_edge": {...}}) to b.
func AppendClassEdge(b []byte, e *ClassEdge) ([]byte, error) {
	j, err := json.Marshal(classLine{e})
	if err != nil {
		return b, err
	}
	return append(append(b, j...), '\n'), nil
}

// Validate checks that r is a report this version of lockscope knows: a
// kind among Kinds and a count that is not negative.
func (r *Report) Validate() error {
	switch {
	case r.Kind == "":
		return errors.New("not a report: no kind")
	case !slices.Contains(Kinds, r.Kind):
		return fmt.Errorf("unknown kind %q (this lockscope knows %s)", r.Kind, kindNames())
	case r.Count < 0:
		return fmt.Errorf("negative count %d", r.Count)
	}
	return nil
}

func kindNames() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// ParseLine decodes one line into a Report and validates it.
func ParseLine(line []byte) (Report, error) {
	var rep Report
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return rep, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return rep, fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return rep, fmt.Errorf("field %q: %v", te.Field, err)
		}
		return rep, err
	}
	return rep, rep.Validate()
}

// LineError is a line of a report file that is not a report.
type LineError struct {
	File string
	Line int
	Msg  string
}

// Error formats e as "file:line: message".
func (e LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ReadLines reads JSON-lines reports from r, named name in errors. Blank
// lines and class edges are skipped; a line that is not a valid report is
// returned as a LineError and the reading goes on. The error is for r
// itself failing.
func ReadLines(name string, r io.Reader) ([]Report, []LineError, error) {
	f, errs, err := ReadFile(name, r)
	return f.Reports, errs, err
}

// File is what a report file holds: reports, and the class edges of the
// processes that wrote it.
type File struct {
	Reports    []Report
	ClassEdges []ClassEdge
}

// ReadFile reads a report file's lines from r, as ReadLines does, keeping the
// class edges too.
func ReadFile(name string, r io.Reader) (File, []LineError, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var reports []Report
	var edges []ClassEdge
	var errs []LineError
	result := func() File { return File{reports, edges} }
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br)
		if tooLong {
			errs = append(errs, LineError{name, n, fmt.Sprintf("line longer than %d bytes", MaxLine)})
		} else if t := bytes.TrimSpace(line); bytes.HasPrefix(t, []byte(`{"class_edge":`)) {
			var cl classLine
			if perr := json.Unmarshal(t, &cl); perr != nil || cl.ClassEdge == nil || cl.ClassEdge.From == "" || cl.ClassEdge.To == "" {
				errs = append(errs, LineError{name, n, "not a class edge"})
			} else {
				edges = append(edges, *cl.ClassEdge)
			}
		} else if len(t) > 0 {
			rep, perr := ParseLine(line)
			if perr != nil {
				errs = append(errs, LineError{name, n, perr.Error()})
			} else {
				reports = append(reports, rep)
			}
		}
		if err == io.EOF {
			return result(), errs, nil
		}
		if err != nil {
			return result(), errs, err
		}
	}
}

// readLine returns the next line without its newline. A line longer than
// MaxLine is consumed and reported as too long.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > MaxLine+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), tooLong, err
	}
}
