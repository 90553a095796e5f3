/* SPDX-License-Identifier: MIT */
#include "xl-cfg.h"
int xl_cfg_placeholder;
