/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "hv.h"
