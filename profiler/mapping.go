package profiler

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/google/pprof/profile"
)

// memMap is an executable mapping of the process: where a binary's text is.
type memMap struct {
	start, limit, offset uint64
	file, buildID        string
}

// readMappings returns the executable mappings of the process, the main
// executable first, as runtime/pprof finds them: /proc/self/maps where it
// exists, else one mapping covering every address, named by os.Executable.
func readMappings() []memMap {
	data, _ := os.ReadFile("/proc/self/maps")
	maps := parseProcMaps(data)
	exe, _ := os.Executable()
	for i, m := range maps {
		if m.file == exe && i > 0 {
			maps[0], maps[i] = maps[i], maps[0]
			break
		}
	}
	if len(maps) == 0 {
		// pprof expects a mapping, and one with a file name, else it says
		// "Main binary filename not available".
		maps = []memMap{{start: 0, limit: math.MaxUint64, file: exe}}
	}
	return maps
}

// parseProcMaps parses /proc/self/maps, keeping executable mappings backed by
// a file (or a named pseudo-file such as [vdso]), like runtime/pprof.
//
//	00400000-0040b000 r-xp 00000000 fc:01 787766    /bin/cat
func parseProcMaps(data []byte) []memMap {
	var out []memMap
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		fields := strings.Fields(string(line))
		if len(fields) < 6 || len(fields[1]) < 4 || fields[1][2] != 'x' {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		limit, err2 := strconv.ParseUint(hi, 16, 64)
		offset, err3 := strconv.ParseUint(fields[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		// The path is the rest of the line: it may contain spaces.
		file := strings.Join(fields[5:], " ")
		file = strings.TrimSuffix(file, " (deleted)")
		out = append(out, memMap{start: start, limit: limit, offset: offset, file: file, buildID: buildID(file)})
	}
	return out
}

var (
	buildIDsMu sync.Mutex
	buildIDs   = map[string]string{}
)

// buildID returns the GNU build ID of an ELF file, hex-encoded, or "" (Go
// binaries have one only when linked with -B or externally). pprof uses it
// to find the binary in $PPROF_BINARY_PATH; it is cached per file.
func buildID(file string) string {
	if file == "" || file[0] != '/' {
		return ""
	}
	buildIDsMu.Lock()
	id, ok := buildIDs[file]
	buildIDsMu.Unlock()
	if ok {
		return id
	}
	id = readBuildID(file)
	buildIDsMu.Lock()
	buildIDs[file] = id
	buildIDsMu.Unlock()
	return id
}

func readBuildID(file string) string {
	f, err := elf.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		return ""
	}
	note, err := s.Data()
	// An ELF note: namesz, descsz, type (4 bytes each), name "GNU\0", desc.
	if err != nil || len(note) < 16 {
		return ""
	}
	namesz := int(f.ByteOrder.Uint32(note[0:]))
	descsz := int(f.ByteOrder.Uint32(note[4:]))
	off := 12 + (namesz+3)&^3
	if off+descsz > len(note) || descsz == 0 {
		return ""
	}
	return hex.EncodeToString(note[off : off+descsz])
}

// mappingFor returns the pprof mapping holding addr, adding it to p on first
// use; addresses in no known mapping go to the main executable's.
func (b *builder) mappingFor(addr uint64) *profile.Mapping {
	idx := 0
	for i, m := range b.maps {
		if m.start <= addr && addr < m.limit {
			idx = i
			break
		}
	}
	if pm := b.pmaps[idx]; pm != nil {
		return pm
	}
	m := b.maps[idx]
	pm := &profile.Mapping{
		ID:    uint64(len(b.p.Mapping) + 1),
		Start: m.start, Limit: m.limit, Offset: m.offset,
		File: m.file, BuildID: m.buildID,
		// Every location is symbolized here, inlined calls included.
		HasFunctions: true, HasFilenames: true, HasLineNumbers: true, HasInlineFrames: true,
	}
	b.pmaps[idx] = pm
	b.p.Mapping = append(b.p.Mapping, pm)
	return pm
}
