#include "cli/plot.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <system_error>

namespace slope::cli {

namespace fs = std::filesystem;

namespace {

// A string as a gnuplot single-quoted literal ('' is a quote inside it).
std::string quoted(const std::string& s) {
  std::string out(1, '\'');
  for (char c : s) {
    out.push_back(c);
    if (c == '\'') out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

}  // namespace

std::string plot_png(const fs::path& png, const std::string& title, const std::string& xlabel,
                     const std::string& ylabel, const std::vector<PlotSeries>& series,
                     double mark_x, const std::string& mark_label) {
  std::string tmp_name(1, '.');  // (not "." + string: GCC 12's -Wrestrict false positive)
  tmp_name.append(png.filename().string()).append(".tmp-").append(std::to_string(::getpid()));
  const fs::path tmp = png.parent_path() / tmp_name;
  std::ostringstream script;
  script << "set terminal pngcairo size 800,500 noenhanced\n"
         << "set output " << quoted(tmp.string()) << "\n"
         << "set title " << quoted(title) << "\n"
         << "set xlabel " << quoted(xlabel) << "\nset ylabel " << quoted(ylabel) << "\n"
         << "set logscale x 2\nset grid\nset key top right\n";
  script.precision(9);
  if (mark_x > 0.0)
    script << "set arrow from " << mark_x << ", graph 0 to " << mark_x
           << ", graph 1 nohead dashtype 2 lc rgb 'gray40'\n"
           << "set label " << quoted(mark_label) << " at " << mark_x
           << ", graph 0.05 offset 0.5, 0 textcolor rgb 'gray40'\n";
  for (size_t i = 0; i < series.size(); ++i) {  // inline data blocks, one per series
    script << "$d" << i << " << EOD\n";
    for (size_t k = 0; k < series[i].x.size(); ++k)
      script << series[i].x[k] << " " << series[i].y[k] << "\n";
    script << "EOD\n";
  }
  script << "plot ";
  for (size_t i = 0; i < series.size(); ++i)
    script << (i ? ", " : "") << "$d" << i << " using 1:2 with linespoints lw 2 title "
           << quoted(series[i].title);
  script << "\n";

  // Without gnuplot the shell exits before reading: ignore SIGPIPE while writing to it.
  struct sigaction ignore = {}, saved = {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &saved);
  std::FILE* pipe = ::popen("gnuplot 2>/dev/null", "w");
  int status = -1;
  if (pipe) {
    const std::string text = script.str();
    std::fwrite(text.data(), 1, text.size(), pipe);
    status = ::pclose(pipe);
  }
  ::sigaction(SIGPIPE, &saved, nullptr);
  std::error_code ec;
  if (status != 0 || !fs::exists(tmp, ec)) {
    fs::remove(tmp, ec);
    return WIFEXITED(status) && WEXITSTATUS(status) == 127
               ? "gnuplot not found (install gnuplot-nox): no plot"
               : "gnuplot failed: no plot";
  }
  fs::rename(tmp, png, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return "cannot write " + png.string() + ": " + ec.message();
  }
  return "";
}

}  // namespace slope::cli
