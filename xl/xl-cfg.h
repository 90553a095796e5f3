/* SPDX-License-Identifier: MIT */
#ifndef FERRY_XL_CFG_H
#define FERRY_XL_CFG_H
#endif
