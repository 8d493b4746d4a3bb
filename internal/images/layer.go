package images

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// passwd and group are the image's /etc/passwd and /etc/group, those of the distroless images.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"nonroot:x:65532:\n"
)

// layerEntry is one entry of the layer: a directory, or a file whose content is data or, if path is
// set, the file at path.
type layerEntry struct {
	name     string
	mode     int64
	uid, gid int
	dir      bool
	data     []byte
	path     string
}

// writeLayer writes the image's layer, gzip-compressed, to w: the executable /<binName> (the file at
// binPath), /etc/passwd, /etc/group, /home/nonroot, /tmp and, if caPEM is not nil, the CA bundle.
// Entries are sorted, owned by root (but /home/nonroot) and dated epoch, so the same input always
// gives the same bytes.
func writeLayer(w io.Writer, binName, binPath string, caPEM []byte) error {
	entries := []layerEntry{
		{name: binName, mode: 0o755, path: binPath},
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: NonrootUID, gid: NonrootGID, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	if caPEM != nil {
		entries = append(entries,
			layerEntry{name: "etc/ssl/", mode: 0o755, dir: true},
			layerEntry{name: "etc/ssl/certs/", mode: 0o755, dir: true},
			layerEntry{name: caBundlePath, mode: 0o644, data: caPEM},
		)
	}
	for _, e := range entries {
		if strings.TrimSuffix(e.name, "/") == binName && e.path == "" {
			return fmt.Errorf("executable name %q collides with %s", binName, e.name)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func writeEntry(tw *tar.Writer, e layerEntry) error {
	hdr := &tar.Header{
		Name:    e.name,
		Mode:    e.mode,
		Uid:     e.uid,
		Gid:     e.gid,
		ModTime: epoch,
	}
	if e.dir {
		hdr.Typeflag = tar.TypeDir
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag = tar.TypeReg
	if e.path == "" {
		hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("%s: %w", e.path, err)
	}
	return nil
}
