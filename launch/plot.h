// `fmps plot`: training curves from a --metrics_out JSONL file as one self-contained SVG that a
// browser opens: logloss (train progressive, train per epoch, validation, test) against rows and
// against time, AUC (validation, test) against rows, and rows/s against time.
//
// Every drawn series carries its values: <polyline data-series="NAME" data-x="rows|time_s"
// data-values="x,y x,y ..." points="px,py ...">, the values exactly as read from the file
// (tests compare them with the JSONL; a reader can too).
#ifndef FMPS_LAUNCH_PLOT_H_
#define FMPS_LAUNCH_PLOT_H_

#include <string>

#include "ps/base/status.h"

namespace fmps {

// `jsonl`: the file's text; `source`: its name, for errors ("FILE:LINE: ...") and the title.
Result<std::string> PlotCurvesSvg(const std::string& jsonl, const std::string& source);

}  // namespace fmps

#endif  // FMPS_LAUNCH_PLOT_H_
