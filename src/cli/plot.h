// Plots with the gnuplot binary (gnuplot-nox): the CLI's pictures, never the library's.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace slope::cli {

struct PlotSeries {
  std::string title;
  std::vector<double> x, y;
};

// Writes a PNG of y against x (log2 x axis) to `png`: gnuplot draws into a temporary file
// beside it, which is renamed over `png` when gnuplot succeeded. Returns an empty string on
// success, else why there is no plot ("gnuplot not found: install gnuplot-nox") — a missing
// plot is a note, not an error.
// mark_x > 0 draws a dashed vertical line there, labelled mark_label (the training length).
std::string plot_png(const std::filesystem::path& png, const std::string& title,
                     const std::string& xlabel, const std::string& ylabel,
                     const std::vector<PlotSeries>& series, double mark_x = 0.0,
                     const std::string& mark_label = "");

}  // namespace slope::cli
