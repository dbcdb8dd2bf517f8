// dlib68: an independent 68-point face landmark grader (dlib's HOG frontal face detector and its
// 68-point shape predictor, iBUG 300-W layout), used to grade rendered frames with a tracker that
// is not the project's own MediaPipe pipeline. Built by scripts/build-dlib-grader.sh.
//
// Usage: dlib68 <shape_predictor_68_face_landmarks.dat>
//
// Protocol (binary-safe; one process serves any number of frames):
//   stdin,  per frame: a header line "W H\n", then exactly W*H*3 bytes of packed RGB, row-major.
//   stdout, per frame: one line, flushed:
//     "0"                      no face found
//     "1 x0 y0 x1 y1 ... x67 y67"  the largest detected face's 68 points, image pixels
// The detector runs at 1x; only when that finds nothing and the image's larger side is under
// 400 px does it run once more on a 2x upsampled copy. The shape predictor always runs on the
// original pixels. EOF at a frame boundary ends the process with status 0; a malformed header or
// a truncated frame ends it with status 2 and a message on stderr.
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace {

constexpr long kMaxSide = 8192;
constexpr long kUpsampleBelow = 400;

[[noreturn]] void fail(const std::string& msg, int code = 2) {
  std::fprintf(stderr, "dlib68: %s\n", msg.c_str());
  std::exit(code);
}

// Reads one "W H" header line. False on EOF before the first byte of a header.
bool read_header(long& w, long& h) {
  std::string line;
  int c;
  while ((c = std::getc(stdin)) != EOF && c != '\n') {
    if (line.size() >= 64) fail("frame header line is too long (expected \"W H\\n\")");
    line.push_back(static_cast<char>(c));
  }
  if (c == EOF) {
    if (line.empty()) return false;
    fail("input ended inside a frame header");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const char* s = line.c_str();
  char* end = nullptr;
  errno = 0;
  w = std::strtol(s, &end, 10);
  if (end == s || errno) fail("bad frame header \"" + line + "\"");
  s = end;
  h = std::strtol(s, &end, 10);
  if (end == s || errno) fail("bad frame header \"" + line + "\"");
  while (*end == ' ' || *end == '\t') ++end;
  if (*end != '\0') fail("bad frame header \"" + line + "\"");
  if (w < 1 || h < 1 || w > kMaxSide || h > kMaxSide) fail("frame size out of range in header \"" + line + "\"");
  return true;
}

void read_pixels(std::vector<unsigned char>& buf) {
  size_t got = 0;
  while (got < buf.size()) {
    const size_t n = std::fread(buf.data() + got, 1, buf.size() - got, stdin);
    if (n == 0) fail("input ended inside a frame (" + std::to_string(got) + " of " + std::to_string(buf.size()) + " bytes)");
    got += n;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) fail("usage: dlib68 <shape_predictor_68_face_landmarks.dat>", 64);
  dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  dlib::shape_predictor predictor;
  try {
    dlib::deserialize(argv[1]) >> predictor;
  } catch (const std::exception& e) {
    fail(std::string("cannot load the shape predictor from ") + argv[1] + ": " + e.what(), 1);
  }
  if (predictor.num_parts() != 68) fail("the shape predictor has " + std::to_string(predictor.num_parts()) + " parts, expected 68", 1);

  std::vector<unsigned char> buf;
  dlib::array2d<dlib::rgb_pixel> img;
  dlib::array2d<dlib::rgb_pixel> up;
  dlib::pyramid_down<2> pyramid;
  long w = 0, h = 0;
  while (read_header(w, h)) {
    buf.resize(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
    read_pixels(buf);
    img.set_size(h, w);
    const unsigned char* px = buf.data();
    for (long y = 0; y < h; ++y) {
      for (long x = 0; x < w; ++x, px += 3) img[y][x] = dlib::rgb_pixel(px[0], px[1], px[2]);
    }

    std::vector<dlib::rectangle> faces = detector(img);
    if (faces.empty() && std::max(w, h) < kUpsampleBelow) {
      dlib::pyramid_up(img, up, pyramid);
      faces = detector(up);
      for (auto& r : faces) r = pyramid.rect_down(r);
    }
    if (faces.empty()) {
      std::fputs("0\n", stdout);
    } else {
      const auto largest = std::max_element(faces.begin(), faces.end(),
          [](const dlib::rectangle& a, const dlib::rectangle& b) { return a.area() < b.area(); });
      const dlib::full_object_detection shape = predictor(img, *largest);
      std::string out = "1";
      char num[48];
      for (unsigned long i = 0; i < shape.num_parts(); ++i) {
        std::snprintf(num, sizeof num, " %ld %ld", shape.part(i).x(), shape.part(i).y());
        out += num;
      }
      out += '\n';
      std::fputs(out.c_str(), stdout);
    }
    if (std::fflush(stdout) != 0) return 1;
  }
  return 0;
}
