// The panels, for the static dashboard (dashboard/main.ts) and the viewer's pages (pages/).
import "./panels/panels.css";

export type { PanelContext } from "./panels/context";
export {
  contextRow,
  quantileGroupsPanel,
  tokenCardContent,
  topContextsPanel,
} from "./panels/contexts";
export { explanationPanel, scoreChips } from "./panels/explanation";
export { featureLinkEl, featureTablePanel } from "./panels/featureTable";
export { featureView } from "./panels/featureView";
export { histogram } from "./panels/histogram";
export { actHistPanel, logitHistPanel } from "./panels/histograms";
export { logitTablesPanel } from "./panels/logitTables";
export { promptView } from "./panels/promptView";
export { hideCard, showCard, withCard } from "./panels/tokenCard";
export type * from "./panels/types";
